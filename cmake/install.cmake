# The C++ package: `cmake --install` puts the public headers under include/iterselect/, the
# static core library (isel_cpu, the CPU kernels of every family) under lib/, and the CMake
# package that `find_package(iterselect)` reads, with the target iterselect::core.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(ISEL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/iterselect)
set_target_properties(isel_cpu PROPERTIES EXPORT_NAME core)
set_target_properties(isel_flags PROPERTIES EXPORT_NAME flags)
install(TARGETS isel_cpu isel_flags EXPORT iterselectTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})

# Public headers: each family's csrc/<family>/<family>.hpp (its contract) and every header it
# includes, followed to the end, so that a family header that gains an include stays installable.
# Everything else under csrc/ is internal.
file(GLOB ISEL_FAMILY_DIRS LIST_DIRECTORIES true ${CMAKE_CURRENT_SOURCE_DIR}/csrc/*)
set(ISEL_UMBRELLA_INCLUDES "")
set(isel_todo "")
foreach(dir ${ISEL_FAMILY_DIRS})
  get_filename_component(family ${dir} NAME)
  if(IS_DIRECTORY ${dir} AND EXISTS ${dir}/${family}.hpp AND NOT family MATCHES "^(bindings|common|tests)$")
    list(APPEND isel_todo ${family}/${family}.hpp)
    string(APPEND ISEL_UMBRELLA_INCLUDES "#include \"${family}/${family}.hpp\"\n")
  endif()
endforeach()
set(isel_public "")
while(isel_todo)
  list(POP_FRONT isel_todo header)
  if(header IN_LIST isel_public)
    continue()
  endif()
  list(APPEND isel_public ${header})
  file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/csrc/${header} includes REGEX "^#include \"[^\"]+\"")
  foreach(line ${includes})
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" included "${line}")
    list(APPEND isel_todo ${included})
  endforeach()
endwhile()
foreach(header ${isel_public})
  get_filename_component(subdir ${header} DIRECTORY)
  install(FILES csrc/${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/iterselect/${subdir})
endforeach()
set(ISEL_UMBRELLA ${CMAKE_CURRENT_BINARY_DIR}/iterselect.hpp)
file(CONFIGURE OUTPUT ${ISEL_UMBRELLA} CONTENT
  "// Every public header of iterselect ${PROJECT_VERSION}: #include <iterselect/iterselect.hpp>.\n#pragma once\n\n${ISEL_UMBRELLA_INCLUDES}")
install(FILES ${ISEL_UMBRELLA} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/iterselect)

install(EXPORT iterselectTargets NAMESPACE iterselect:: DESTINATION ${ISEL_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/iterselectConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/iterselectConfig.cmake INSTALL_DESTINATION ${ISEL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/iterselectConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/iterselectConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/iterselectConfigVersion.cmake
        DESTINATION ${ISEL_CMAKE_DIR})

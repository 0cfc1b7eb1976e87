"""A packed CPU forward for Llama-family models: the scorers' fast path on CPU.

transformers runs a batch as a padded ``rows × longest`` block through the model's own
modules. On CPU that leaves most of the time outside the matrix products (measured with a
134M-parameter Llama in bf16 on an AMX Xeon, ``benchmarks/scoring.py --realistic``):

* oneDNN runs the 768-wide output products on **one thread** when the block has 640-1,408
  rows (its brgemm heuristic), which the default padded batches hit;
* padding, and under autocast a cast of every activation before every product;
* eager element-wise code: RMS norms of six passes, rotary embeddings of five, SiLU and the
  product with up, residual adds, the autocast casts, and the float32 copy and log-softmax of
  the logits (three times as long as the vocabulary product itself).

:class:`PackedForward` reads the weights of a ``LlamaForCausalLM``, ``MistralForCausalLM`` or
``Qwen2ForCausalLM`` (no copy when they are in the compute dtype; under autocast one bf16
copy per scoring call, as autocast's own cache holds) and runs whole sequences **packed** end
to end: one ``(tokens, hidden)`` matrix per batch of about 2,048 tokens, attention per sequence
with torch's causal SDPA kernel, the model's own rotary module (so every RoPE scaling it
supports), and the vocabulary product in 512-row blocks. In bf16 the
element-wise steps run as fused kernels of ``_core`` (``csrc/decoder``: residual add + RMS
norm, SiLU(gate) * up, RoPE in place, and the cross-entropy straight from the bf16 logits),
one pass each, in float32 with one rounding to bf16. It is the same computation as the model's
forward: in float32 the losses agree with it to float32 rounding, in bf16 to bf16 rounding
(``tests/test_packed_forward.py``).

Precision follows the scorers' ``autocast`` option: under bf16 (or fp16) autocast, matrix
products and attention run in that type while the residual stream and the RMS norms stay
float32 (as autocast does); otherwise the model's own dtype, the norms in float32 (as the model
does) and, for a bf16 model, the residual stream in float32 (one rounding less than the model).

Anything the path does not recognise exactly (another architecture, LoRA or quantised layers,
hooks, a replaced forward, an activation other than SiLU, a sliding window shorter than the
sequences, a GPU) falls back to the model's own forward: :func:`unsupported_reason` says why.
"""
from __future__ import annotations

import numpy as np

SUPPORTED = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM")

# Rows of hidden states projected onto the vocabulary at a time: oneDNN's bf16 rate on a
# 32,000 x 768 head was 1,350 GFLOP/s at 512 rows and ~850 at 640 rows or more (AMX Xeon).
HEAD_ROWS = 512

# Threads of the fused kernels: one. After each product torch's OpenMP (libgomp) workers keep
# spinning on the other cores for milliseconds, and a second thread of ours measured slower
# (norm, RoPE) or no faster (SiLU, cross-entropy); with GOMP_SPINCOUNT=10000 set before torch
# loads, two threads of ours ran twice as fast.
KERNEL_THREADS = 1


def unsupported_reason(model, longest: int) -> str | None:
    """Why :class:`PackedForward` cannot run ``model`` exactly, or None when it can."""
    import torch

    name = type(model).__name__
    if name not in SUPPORTED:
        return f"{name} is not one of {', '.join(SUPPORTED)}"
    config = model.config
    if getattr(config, "hidden_act", None) != "silu":
        return f"hidden_act {getattr(config, 'hidden_act', None)!r} is not 'silu'"
    if getattr(config, "pretraining_tp", 1) != 1:
        return "pretraining_tp is not 1"
    window = getattr(config, "sliding_window", None)
    if window is not None and longest > window:
        return f"a sequence of {longest} tokens is longer than the sliding window ({window})"
    if "forward" in vars(model):
        return "the model's forward is replaced (wrapped?)"
    params = list(model.parameters())
    if not params or any(p.device.type != "cpu" for p in params):
        return "the model is not entirely on the CPU"
    if any(m._forward_hooks or m._forward_pre_hooks or hasattr(m, "_hf_hook")
           for m in model.modules()):
        return "the model has forward hooks"
    base = getattr(model, "model", None)
    head = model.get_output_embeddings()
    if base is None or type(head) is not torch.nn.Linear or head.bias is not None:
        return "the output head is not a plain Linear without bias"
    for layer in base.layers:
        attn, mlp = layer.self_attn, layer.mlp
        linears = [attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj,
                   mlp.gate_proj, mlp.up_proj, mlp.down_proj]
        if any(type(m) is not torch.nn.Linear for m in linears):
            return "a projection is not a plain torch.nn.Linear (LoRA, quantised?)"
        if type(mlp.act_fn) not in _silu_types():
            return f"the MLP activation is {type(mlp.act_fn).__name__}, not SiLU"
    return None


def packed_forward_for(model, compute_dtype, longest: int):
    """A :class:`PackedForward` for ``model``, or None (with the reason) when it cannot run it.

    Returns ``(forward or None, reason or None)``.
    """
    reason = unsupported_reason(model, longest)
    if reason is not None:
        return None, reason
    return PackedForward(model, compute_dtype), None


class PackedForward:
    """The decoder of a supported model, run on packed sequences (see the module docstring).

    Parameters
    ----------
    model : LlamaForCausalLM, MistralForCausalLM or Qwen2ForCausalLM on the CPU
    compute_dtype : torch dtype
        Of the matrix products and attention; the residual stream and norms stay in float32
        for a float32 model and in the model's dtype otherwise.
    fused : bool, optional
        Run the element-wise steps (residual add + RMS norm, SiLU(gate) * up, rotary
        embedding, and the cross-entropy of the logits) with the fused kernels of ``_core``
        (``csrc/decoder``): one pass each,
        float32 arithmetic, one rounding to bf16; the residual stream stays float32, also for
        a bf16 model. Defaults to True for bf16 compute (the only dtype they take), else
        torch's operations.

    Examples
    --------
    >>> import torch
    >>> from iterselect.scoring.packed_forward import PackedForward
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, _ = toy_model_and_tokenizer("llama")
    >>> fwd = PackedForward(model, torch.float32)
    >>> ids = torch.tensor([1, 40, 41, 1, 42])            # two sequences, 3 and 2 tokens
    >>> with torch.inference_mode():
    ...     hidden = fwd.hidden_states(ids, [3, 2])
    ...     alone = model.model(ids[None, 3:]).last_hidden_state[0]
    >>> hidden.shape[0], bool(torch.allclose(hidden[3:], alone, atol=1e-5))
    (5, True)
    """

    def __init__(self, model, compute_dtype, fused: bool | None = None):
        import torch

        config = model.config
        self.model = model
        self.compute = compute_dtype
        bf16 = compute_dtype == torch.bfloat16
        if fused and not bf16:
            raise ValueError(f"PackedForward: fused=True needs compute_dtype torch.bfloat16, got "
                             f"{compute_dtype}")
        self.fused = bf16 if fused is None else bool(fused)
        model_dtype = next(model.parameters()).dtype
        # the fused kernels keep the residual stream in float32, even for a bf16 model
        self.residual = (torch.float32 if model_dtype == torch.float32 or self.fused
                         else model_dtype)
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = (getattr(config, "head_dim", None)
                         or config.hidden_size // config.num_attention_heads)
        self.layers = []
        for layer in model.model.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append({
                "norm1": _norm(layer.input_layernorm),
                "qkv": _products([attn.q_proj, attn.k_proj, attn.v_proj], compute_dtype),
                "o": _products([attn.o_proj], compute_dtype)[0],
                "norm2": _norm(layer.post_attention_layernorm),
                "gate_up": _products([mlp.gate_proj, mlp.up_proj], compute_dtype),
                "down": _products([mlp.down_proj], compute_dtype)[0],
                "scaling": float(getattr(attn, "scaling", self.head_dim ** -0.5)),
            })
        self.final_norm = _norm(model.model.norm)
        self.head = model.get_output_embeddings().weight.detach().to(compute_dtype)

    def hidden_states(self, ids, lengths):
        """Final-norm hidden states ``(tokens, hidden)`` of the sequences packed in ``ids``
        (1-D, ``lengths`` tokens each, every one starting at position 0), in the compute dtype."""
        import torch

        base = self.model.model
        lengths = [int(n) for n in lengths]
        positions = torch.cat([torch.arange(n) for n in lengths])[None]
        h = base.embed_tokens(ids).to(self.residual)
        cos, sin = base.rotary_emb(h[None], positions)
        starts = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        if self.fused:
            return self._layers_fused(h.float().contiguous(), cos[0].float().contiguous(),
                                      sin[0].float().contiguous(), starts)
        return self._layers_torch(h, cos[0, :, None].to(self.compute),
                                  sin[0, :, None].to(self.compute), starts)

    def _attention(self, q, k, v, starts, scaling):
        """Causal attention of each packed sequence on its own: (tokens, heads, head_dim)."""
        import torch
        import torch.nn.functional as F

        mixed = torch.empty(q.shape, dtype=self.compute)
        gqa = self.kv_heads != self.heads
        for s, e in zip(starts[:-1], starts[1:]):
            if e == s:
                continue
            # (1, heads, T, head_dim) views of one sequence; causal, as the model's own mask
            mixed[s:e] = F.scaled_dot_product_attention(
                q[s:e].transpose(0, 1)[None], k[s:e].transpose(0, 1)[None],
                v[s:e].transpose(0, 1)[None], is_causal=True, scale=scaling,
                enable_gqa=gqa)[0].transpose(0, 1)
        return mixed.view(len(q), -1)

    def _layers_torch(self, h, cos, sin, starts):
        """The layers in torch operations, any dtype (the reference of the fused path)."""
        import torch.nn.functional as F

        tokens, hd = len(h), self.head_dim

        def norm(h, params):
            weight, eps = params
            return F.rms_norm(h.float(), (h.shape[-1],), weight, eps).to(self.compute)

        for layer in self.layers:
            q, k, v = _project(norm(h, layer["norm1"]), layer["qkv"])
            q = _rotate(q.view(tokens, self.heads, hd), cos, sin)
            k = _rotate(k.view(tokens, self.kv_heads, hd), cos, sin)
            mixed = self._attention(q, k, v.view(tokens, self.kv_heads, hd), starts,
                                    layer["scaling"])
            h = h + F.linear(mixed, *layer["o"]).to(self.residual)
            gate, up = _project(norm(h, layer["norm2"]), layer["gate_up"])
            h = h + F.linear(F.silu(gate) * up, *layer["down"]).to(self.residual)
        return norm(h, self.final_norm)

    def _layers_fused(self, h, cos, sin, starts):
        """The layers with bf16 products and the fused kernels of ``_core`` (decoder_ops):
        the residual stream ``h`` float32, updated in place with the next norm."""
        import torch
        import torch.nn.functional as F

        from .. import _core

        threads = KERNEL_THREADS
        tokens, hd = len(h), self.head_dim
        h_np, cos_np, sin_np = h.numpy(), cos.numpy(), sin.numpy()
        x = torch.empty(h.shape, dtype=torch.bfloat16)
        weight, eps = self.layers[0]["norm1"] if self.layers else self.final_norm
        _core.decoder_add_rms_norm(h_np, None, weight.numpy(), eps, _bits(x), threads)
        norms_after = [layer["norm1"] for layer in self.layers[1:]] + [self.final_norm]
        for layer, after in zip(self.layers, norms_after):
            q, k, v = _project(x, layer["qkv"])
            _core.decoder_rope(_bits(q), self.heads, hd, cos_np, sin_np, threads)
            _core.decoder_rope(_bits(k), self.kv_heads, hd, cos_np, sin_np, threads)
            mixed = self._attention(q.view(tokens, self.heads, hd), k.view(tokens, self.kv_heads, hd),
                                    v.view(tokens, self.kv_heads, hd), starts, layer["scaling"])
            attended = F.linear(mixed, *layer["o"])
            weight, eps = layer["norm2"]
            _core.decoder_add_rms_norm(h_np, _bits(attended), weight.numpy(), eps, _bits(x), threads)
            gate, up = _project(x, layer["gate_up"])
            act = torch.empty(gate.shape, dtype=torch.bfloat16)
            _core.decoder_silu_mul(_bits(gate), _bits(up), _bits(act), threads)
            weight, eps = after
            _core.decoder_add_rms_norm(h_np, _bits(F.linear(act, *layer["down"])), weight.numpy(),
                                       eps, _bits(x), threads)
        return x

    def token_nll(self, hidden, targets, ce_rows: int):
        """``-log p(target)`` for each row of ``hidden``: the vocabulary projection in blocks of
        :data:`HEAD_ROWS` rows; the cross-entropy by ``_core``'s fused kernel on the bf16
        logits (fused path), else torch's float32 log-softmax in blocks of ``ce_rows``."""
        import torch
        import torch.nn.functional as F

        from .. import _core

        out = []
        for i in range(0, len(hidden), HEAD_ROWS):
            logits = F.linear(hidden[i:i + HEAD_ROWS], self.head)
            tgt = targets[i:i + HEAD_ROWS]
            if self.fused:
                out.append(torch.from_numpy(_core.decoder_token_nll(_bits(logits), tgt.numpy(),
                                                                    KERNEL_THREADS)))
                continue
            out += [F.cross_entropy(logits[j:j + ce_rows].float(), tgt[j:j + ce_rows],
                                    reduction="none") for j in range(0, len(logits), ce_rows)]
        return torch.cat(out) if out else torch.zeros(0)


def _silu_types():
    """torch's SiLU module and transformers' (``ACT2FN["silu"]``, a plain ``F.silu``)."""
    import torch

    types = [torch.nn.SiLU]
    try:
        from transformers.activations import SiLUActivation
        types.append(SiLUActivation)
    except ImportError:  # older transformers map "silu" to torch's own module
        pass
    return tuple(types)


def _norm(module):
    """(float32 weight, epsilon) of an RMS norm module."""
    return module.weight.detach().float(), float(module.variance_epsilon)


def _products(linears, dtype):
    """[(weight, bias)] of ``linears`` in ``dtype``: the model's own tensors when they already
    are (no copy), else one cast copy (as autocast's cache would hold). Stacking q/k/v or
    gate/up into one product measured no faster (2,048-row blocks, AMX)."""
    return [(m.weight.detach().to(dtype), None if m.bias is None else m.bias.detach().to(dtype))
            for m in linears]


def _project(x, products):
    """Each product of :func:`_products` on ``x``."""
    import torch.nn.functional as F

    return [F.linear(x, *p) for p in products]


def _bits(tensor):
    """A bfloat16 tensor's storage as an int16 numpy array (a view: no copy, same strides)."""
    import torch

    return tensor.view(torch.int16).numpy()


def _rotate(x, cos, sin):
    """Rotary embedding, half-split convention (transformers' ``rotate_half``)."""
    import torch

    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin

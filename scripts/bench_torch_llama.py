"""PyTorch's CPU speed on the shape `rlhf bench train|generate --arch llama` times, for the README's
side-by-side figures. The model mirrors src/engine/llama.ts (itself Transformers' LlamaForCausalLM):
RMSNorm, rotary embeddings (rotate_half), grouped-query attention, SwiGLU, tied head, float32; a
training step is forward, cross-entropy, backward and AdamW on random tokens, as the bench's.
With --lora-r, only rank-r adapters on the attention and MLP projections train (PEFT's layout).

Run: /usr/bin/python3 scripts/bench_torch_llama.py [--threads 2] [--lora-r 16]   (Debian's python3-torch)
"""
import argparse, json, math, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--layers", type=int, default=30)
p.add_argument("--embd", type=int, default=576)
p.add_argument("--heads", type=int, default=9)
p.add_argument("--kv-heads", type=int, default=3)
p.add_argument("--ffn", type=int, default=1536)
p.add_argument("--vocab", type=int, default=49152)
p.add_argument("--block", type=int, default=256)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--steps", type=int, default=2)
p.add_argument("--tokens", type=int, default=64)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--lora-r", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
C, H, KV, L, V, T = a.embd, a.heads, a.kv_heads, a.layers, a.vocab, a.block
hd = C // H


class Lin(torch.nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(o, i) * 0.02)
        self.r = a.lora_r
        if self.r:
            self.w.requires_grad_(False)
            self.A = torch.nn.Parameter(torch.randn(self.r, i) / math.sqrt(i))
            self.B = torch.nn.Parameter(torch.zeros(o, self.r))

    def forward(self, x):
        y = x @ self.w.T
        return y + (x @ self.A.T) @ self.B.T * 2.0 if self.r else y


def rms(x, g):
    return g * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))


def rot(x):
    return torch.cat((-x[..., hd // 2:], x[..., : hd // 2]), -1)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1 = torch.nn.Parameter(torch.ones(C))
        self.n2 = torch.nn.Parameter(torch.ones(C))
        self.q, self.k, self.v, self.o = Lin(C, H * hd), Lin(C, KV * hd), Lin(C, KV * hd), Lin(H * hd, C)
        self.g, self.u, self.d = Lin(C, a.ffn), Lin(C, a.ffn), Lin(a.ffn, C)
        if a.lora_r:
            self.n1.requires_grad_(False)
            self.n2.requires_grad_(False)

    def forward(self, x, cos, sin, cache=None):
        B_, T_, _ = x.shape
        h = rms(x, self.n1)
        q = self.q(h).view(B_, T_, H, hd).transpose(1, 2)
        k = self.k(h).view(B_, T_, KV, hd).transpose(1, 2)
        v = self.v(h).view(B_, T_, KV, hd).transpose(1, 2)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        att = q @ k.transpose(-1, -2) / math.sqrt(hd)
        Tk = k.shape[2]
        if T_ > 1:
            att = att + torch.full((T_, Tk), float("-inf")).triu(Tk - T_ + 1)
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B_, T_, C)
        x = x + self.o(y)
        h = rms(x, self.n2)
        return x + self.d(F.silu(self.g(h)) * self.u(h))


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Parameter(torch.randn(V, C) * 0.02)
        self.blocks = torch.nn.ModuleList([Block() for _ in range(L)])
        self.norm = torch.nn.Parameter(torch.ones(C))
        inv = 1.0 / (100000 ** (torch.arange(0, hd, 2).float() / hd))
        ang = torch.arange(4096).float()[:, None] * inv[None]
        e = torch.cat([ang, ang], -1)
        self.cos, self.sin = e.cos(), e.sin()
        if a.lora_r:
            self.emb.requires_grad_(False)
            self.norm.requires_grad_(False)

    def forward(self, ids, past=0, caches=None):
        x = self.emb[ids]
        T_ = ids.shape[1]
        cos, sin = self.cos[past:past + T_], self.sin[past:past + T_]
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, caches[i] if caches is not None else None)
        return rms(x, self.norm) @ self.emb.T


m = Model()
opt = torch.optim.AdamW([q for q in m.parameters() if q.requires_grad], lr=1e-4)
ids = torch.randint(0, V, (a.batch, T))
times = []
for s in range(a.steps + 2):
    t = time.perf_counter()
    loss = F.cross_entropy(m(ids).view(-1, V), ((ids + 1) % V).view(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    times.append(time.perf_counter() - t)
timed = times[2:]
train = a.batch * T * len(timed) / sum(timed)
with torch.no_grad():
    caches = [[] for _ in range(L)]
    tok = torch.tensor([[1]])
    m(tok, 0, caches)
    caches = [[] for _ in range(L)]
    t = time.perf_counter()
    for i in range(a.tokens):
        logits = m(tok, i, caches)
        tok = torch.multinomial(logits[0, -1].softmax(-1), 1)[None]
    gen = a.tokens / (time.perf_counter() - t)
print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(), "lora_r": a.lora_r,
                  "tokens_per_second": train, "ms_per_step": 1000 * sum(timed) / len(timed), "generate_cached_tokens_per_second": gen}))

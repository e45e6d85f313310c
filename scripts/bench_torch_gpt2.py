"""PyTorch's CPU speed on the shape `rlhf bench train|generate` (--arch gpt2) times, for `npm run bench`'s
side-by-side figures. The model mirrors src/engine/model.ts, which is GPT-2 as nanoGPT's model.py
(karpathy/nanoGPT) writes it: pre-LayerNorm blocks, causal self-attention, tanh-GELU MLP, learned
positions, the head tied to the token embedding, no dropout, float32. A training step is forward,
cross-entropy, backward, global-norm clipping at 1.0 and AdamW with weight decay on 2-D weights, on
random tokens, as the bench's. Generation samples with the key/value cache at batch 1 and batch 16.

Run: /usr/bin/python3 scripts/bench_torch_gpt2.py [--threads 2]   (Debian's python3-torch)
"""
import argparse, json, math, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--layers", type=int, default=4)
p.add_argument("--embd", type=int, default=128)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--vocab", type=int, default=65)
p.add_argument("--block", type=int, default=64)
p.add_argument("--batch", type=int, default=12)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--tokens", type=int, default=63)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
C, H, L, V, T = a.embd, a.heads, a.layers, a.vocab, a.block
hd = C // H


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
        self.c_attn, self.c_proj = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
        self.c_fc, self.mlp_proj = torch.nn.Linear(C, 4 * C), torch.nn.Linear(4 * C, C)

    def forward(self, x, cache=None):
        B_, T_, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, 2)
        q, k, v = (t.view(B_, T_, H, hd).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            if cache:
                k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
            cache[:] = [k, v]
        att = q @ k.transpose(-1, -2) / math.sqrt(hd)
        Tk = k.shape[2]
        if T_ > 1:
            att = att + torch.full((T_, Tk), float("-inf")).triu(Tk - T_ + 1)
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B_, T_, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Parameter(torch.randn(V, C) * 0.02)
        self.wpe = torch.nn.Parameter(torch.randn(T, C) * 0.02)
        self.h = torch.nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = torch.nn.LayerNorm(C)

    def forward(self, ids, past=0, caches=None):
        x = self.wte[ids] + self.wpe[past:past + ids.shape[1]]
        for i, b in enumerate(self.h):
            x = b(x, caches[i] if caches is not None else None)
        return self.ln_f(x) @ self.wte.T


m = GPT()
decay = [q for q in m.parameters() if q.dim() >= 2]
rest = [q for q in m.parameters() if q.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.95))
ids = torch.randint(0, V, (a.batch, T))
times = []
for s in range(a.steps + 2):
    t = time.perf_counter()
    loss = F.cross_entropy(m(ids).view(-1, V), ((ids + 1) % V).view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
    times.append(time.perf_counter() - t)
timed = times[2:]
train = a.batch * T * len(timed) / sum(timed)


def generate(batch):
    with torch.no_grad():
        caches = [[] for _ in range(L)]
        tok = torch.ones((batch, 1), dtype=torch.long)
        t = time.perf_counter()
        for i in range(a.tokens):
            logits = m(tok, i, caches)
            tok = torch.multinomial(logits[:, -1].softmax(-1), 1)
        return batch * a.tokens / (time.perf_counter() - t)


generate(1)  # warm-up
print(json.dumps({"engine": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "tokens_per_second": train, "ms_per_step": 1000 * sum(timed) / len(timed),
                  "generate_batch1_tokens_per_second": generate(1), "generate_batch16_tokens_per_second": generate(16)}))

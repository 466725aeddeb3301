#!/usr/bin/env python3
"""Import cycles between the library's modules.

Reads every `src/**/*.rs` (not the binary's `src/cmd/`, `src/main.rs`), takes the modules each
file names (`use crate::a::b`, `crate::a::b::f(...)`, `super::x`), and prints the groups of
modules that reach each other (strongly connected components of more than one module).
A module is a file: `src/rdb/walk.rs` is `rdb::walk`, `src/verify/mod.rs` is `verify`.
Exit status 1 when there is a cycle.
"""
import os, re, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src')
mods = {}
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith('.rs'):
            continue
        rel = os.path.relpath(os.path.join(d, f), root)
        if rel.startswith('cmd' + os.sep) or rel in ('main.rs', 'lib.rs'):
            continue
        parts = rel[:-3].split(os.sep)
        if parts[-1] == 'mod':
            parts = parts[:-1]
        mods['::'.join(parts)] = os.path.join(d, f)

def resolve(path):
    """The longest known module that prefixes a `a::b::c` path."""
    parts = path.split('::')
    for n in range(len(parts), 0, -1):
        m = '::'.join(parts[:n])
        if m in mods:
            return m
    return None

edges = {m: set() for m in mods}
for m, f in mods.items():
    text = open(f).read()
    # Drop the unit tests: a test module may use anything.
    text = re.split(r'#\[cfg\(test\)\]\s*mod tests', text)[0]
    text = re.sub(r'//[^\n]*', '', text)
    here = m.split('::')
    is_mod_rs = f.endswith('mod.rs')
    for p in re.findall(r'\bcrate((?:::\w+)+)', text):
        t = resolve(p[2:])
        if t and t != m and not m.startswith(t + '::'):
            edges[m].add(t)
    for p in re.findall(r'\bsuper((?:::\w+)+)', text):
        base = here if is_mod_rs else here[:-1]
        t = resolve('::'.join(base + p[2:].split('::')))
        if t and t != m and not m.startswith(t + '::'):
            edges[m].add(t)
    # `use` groups: crate::{a, b::c}
    for grp in re.findall(r'use crate::\{([^}]*)\}', text):
        for item in grp.split(','):
            t = resolve(item.strip())
            if t and t != m:
                edges[m].add(t)

# Tarjan's strongly connected components.
index, low, stack, on, out = {}, {}, [], set(), []
sys.setrecursionlimit(10000)
def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            out.append(sorted(comp))
for v in sorted(edges):
    if v not in index:
        visit(v)
print(f"{len(mods)} modules, {sum(len(e) for e in edges.values())} edges")
for c in out:
    inner = [f"{a} -> {b}" for a in c for b in sorted(edges[a]) if b in c]
    print("cycle:", ", ".join(inner))
sys.exit(1 if out else 0)

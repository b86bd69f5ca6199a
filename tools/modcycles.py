#!/usr/bin/env python3
"""Reports import cycles between the modules (files) of a Rust crate.

Usage: tools/modcycles.py crates/portcullis-server/src [--level N]

Each file is a module. An edge A -> B exists when A names a path into B, through `use`
or an inline path (`crate::x::y`, `super::z`, `self::w`). Grouped `use a::{b, c::d}`
statements are expanded. With --level N modules are collapsed to their first N path
segments (e.g. --level 2 turns `features/mobile/http` into `features/mobile`), which shows
cycles between features. Exits 1 when a cycle exists.
"""
import os, re, sys

def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] == "mod" or parts == ["lib"]:
        parts = parts[:-1]
    return tuple(parts)

def expand(prefix, body):
    # expands `a::{b, c::{d, e}}` into a list of paths
    out, depth, cur = [], 0, ""
    items = []
    for ch in body:
        if ch == "{": depth += 1
        if ch == "}": depth -= 1
        if ch == "," and depth == 0:
            items.append(cur); cur = ""
        else:
            cur += ch
    items.append(cur)
    for it in items:
        it = it.strip()
        if not it: continue
        m = re.match(r"^([\w:]*?)::\{(.*)\}$", it, re.S)
        if m:
            out += expand(prefix + [p for p in m.group(1).split("::") if p], m.group(2))
        else:
            out.append(prefix + [p.split(" as ")[0].strip() for p in it.split("::") if p.strip()])
    return out

def paths_in(src):
    src = re.sub(r"//[^\n]*", "", src)
    found = []
    for m in re.finditer(r"\buse\s+((?:crate|super|self)\b[^;]*);", src, re.S):
        found += expand([], m.group(1))
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)+)", src):
        found.append(m.group(1).split("::"))
    return found

def resolve(modules, here, path):
    if not path: return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    else:
        base = here
        rest = path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super": base = base[:-1]
            rest = rest[1:]
    best = None
    cand = tuple(base)
    if cand in modules: best = cand
    for seg in rest:
        cand = cand + (seg,)
        if cand in modules: best = cand
        else: break
    return best

def main():
    root = sys.argv[1]
    level = int(sys.argv[sys.argv.index("--level") + 1]) if "--level" in sys.argv else None
    files = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                files[module_of(root, p)] = p
    modules = set(files)
    edges = {m: set() for m in modules}
    for m, p in files.items():
        with open(p) as fh: src = fh.read()
        # Test modules inside a file do not count: they are not part of the build graph.
        src = src.split("#[cfg(test)]")[0]
        for path in paths_in(src):
            t = resolve(modules, m, path)
            if t is None or t == m: continue
            # a module naming its own ancestor only to reach its siblings is not an edge
            # into the ancestor's code unless the ancestor defines it; keep it simple:
            # ancestors with only `mod` declarations are skipped below.
            edges[m].add(t)
    def is_index(m):  # mod.rs / lib.rs that only declares modules and re-exports
        with open(files[m]) as fh: src = re.sub(r"//[^\n]*", "", fh.read())
        return not re.search(r"\b(fn|struct|enum|trait|impl|const|static|type)\b", src)
    for m in modules:
        edges[m] = {t for t in edges[m] if not is_index(t) and not (t == m[:len(t)] and is_index(t))}
    if level:
        col = lambda m: m[:level] if len(m) >= level else m
        g = {}
        for m, ts in edges.items():
            g.setdefault(col(m), set())
            for t in ts:
                if col(t) != col(m): g[col(m)].add(col(t))
        edges = g
    # Tarjan
    idx, low, on, st, out, n = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)
    def sc(v):
        idx[v] = low[v] = n[0]; n[0] += 1; st.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in idx: sc(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(comp)
    for v in list(edges):
        if v not in idx: sc(v)
    name = lambda m: "/".join(m) or "lib"
    for comp in out:
        cs = set(comp)
        print("cycle:", ", ".join(sorted(name(c) for c in comp)))
        for a in sorted(comp):
            for b in sorted(edges[a] & cs):
                print(f"   {name(a)} -> {name(b)}")
    print(f"{len(edges)} modules, {sum(len(v) for v in edges.values())} edges, {len(out)} cycles")
    sys.exit(1 if out else 0)

main()

#!/usr/bin/env python3
"""Holds the product's code to what a reader takes in at once (issue 27):
no Rust file in crates/ over 800 lines, no function in crates/, functions/
or tools/ over 60 lines unless the line above its signature (or its
attributes) says why, starting `// Long:`. Prints the longest of each and
exits 1 on a breach. Lines are counted from the signature to the closing
brace; strings and comments are skipped when matching braces, roughly."""
import pathlib
import re
import sys

MAX_FILE = 800
MAX_FN = 60
FN = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)')


def code(line):
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split('//')[0]


def reason(lines, i):
    j = i - 1
    while j >= 0 and lines[j].strip().startswith(('#[', '///')):
        j -= 1
    return j >= 0 and lines[j].strip().startswith('// Long:')


def functions(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, started = 0, False
        for j in range(i, len(lines)):
            c = code(lines[j])
            if not started and ';' in c and '{' not in c:
                break
            depth += c.count('{') - c.count('}')
            started = started or '{' in c
            if started and depth <= 0:
                yield j - i + 1, f'{path}:{i + 1}', m.group(6), reason(lines, i)
                break


def main():
    breaches = []
    files = sorted(((len(p.read_text().splitlines()), str(p))
                    for p in pathlib.Path('crates').rglob('*.rs')), reverse=True)
    breaches += [f'{p}: {n} lines (at most {MAX_FILE})' for n, p in files if n > MAX_FILE]
    fns = sorted((f for root in ('crates', 'functions', 'tools')
                  for p in pathlib.Path(root).rglob('*.rs') if 'target' not in p.parts
                  for f in functions(p)), reverse=True)
    breaches += [f'{loc} {name}: {n} lines (at most {MAX_FN}; or a `// Long:` reason above it)'
                 for n, loc, name, why in fns if n > MAX_FN and not why]
    print(f'largest file in crates/: {files[0][1]} ({files[0][0]} lines)')
    print(f'longest function: {fns[0][2]} at {fns[0][1]} ({fns[0][0]} lines); {len(fns)} functions')
    for b in breaches:
        print(b, file=sys.stderr)
    return 1 if breaches else 0


if __name__ == '__main__':
    sys.exit(main())

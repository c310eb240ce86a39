#!/usr/bin/env python3
"""Turns a CUDA source file into C++ for the emulator (README.md). It rewrites only what C++ cannot express:

  kernel<<<grid, block[, shared[, stream]]>>>(args)  ->  ::emu::launch(kernel, grid, block, shared, stream, args)
  extern __shared__ T name[];                        ->  T* name = ::emu::dynamic_shared<T>();
  __shared__ T name[n]...;                           ->  a ::emu::StaticShared, fresh garbage for every block
  asm("op.a.b %0, [%1], 16;" : "=r"(x) : "r"(y))     ->  ::emu::ptx::op_a_b(x, y, 16)   (emu/ptx.h)
  --tunable NAME:  constexpr std::size_t NAME = v;   ->  a value tests may change (::emu::tunable)

The qualifiers (__global__, __device__, ...) are macros of emu/cuda_runtime.h. Comments and strings are left alone,
line numbers are kept (#line, and every rewrite keeps its newlines), so compiler messages point into the .cu file.
Anything it cannot rewrite is an error: an asm statement that is not one instruction, a launch or __shared__ it does
not recognise, or one of these in a header the file includes (headers are compiled as they are).

usage: transform.py SOURCE.cu OUTPUT.cpp [--tunable NAME]...
"""
import argparse
import os
import re
import sys


class TransformError(Exception):
    pass


# ---- reading C++ -----------------------------------------------------------------------------------------------------

def code_mask(src):
    """A list of booleans: True where src[i] is code, False inside comments and string or character literals (not raw
    strings or digit separators: the kernels use neither)."""
    mask = [True] * len(src)
    i, n = 0, len(src)
    while i < n:
        two = src[i:i + 2]
        if two in ('//', '/*'):
            end = src.find('\n' if two == '//' else '*/', i + 2)
            end = n if end < 0 else end + (0 if two == '//' else 2)
        elif src[i] in '"\'':
            end = i + 1
            while end < n and src[end] != src[i]:
                end += 2 if src[end] == '\\' else 1
            end += 1
        else:
            i += 1
            continue
        for j in range(i, min(end, n)):
            mask[j] = False
        i = end
    return mask


def code_matches(pattern, src, mask):
    """re.finditer over src, keeping the matches that start in code."""
    return [m for m in re.finditer(pattern, src) if mask[m.start()]]


def closing(src, mask, i):
    """The index of the bracket that closes the one at src[i], counting (), [] and {}."""
    depth = 0
    for j in range(i, len(src)):
        if not mask[j]:
            continue
        if src[j] in '([{':
            depth += 1
        elif src[j] in ')]}':
            depth -= 1
            if depth == 0:
                return j
    raise TransformError('unbalanced bracket at ' + where(src, i))


def split_top(text, separator):
    """text split at the separators outside brackets and strings."""
    mask = code_mask(text)
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if not mask[i]:
            continue
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
        elif c == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def where(src, i):
    return 'line %d' % (src.count('\n', 0, i) + 1)


def replace_spans(src, edits):
    """Applies (start, end, text) edits, which must not overlap."""
    out, last = [], 0
    for start, end, text in sorted(edits):
        out.append(src[last:start])
        out.append(text)
        last = end
    out.append(src[last:])
    return ''.join(out)


def keep_lines(original, text):
    """text followed by as many newlines as original had, so that the following lines keep their numbers."""
    return text + '\n' * (original.count('\n') - text.count('\n'))


# ---- launches --------------------------------------------------------------------------------------------------------

def callee_start(src, mask, end):
    """Where the kernel expression that ends just before src[end] (the <<<) begins: names, ::, template arguments
    and calls, e.g. scan_kernel<P, Q, Key> or kernel_for(units())."""
    i = end
    while i > 0:
        c = src[i - 1]
        if c in ')>]':
            opener = {')': '(', '>': '<', ']': '['}[c]
            depth, j = 0, i - 1
            while j >= 0:
                if mask[j] and src[j] == c:
                    depth += 1
                elif mask[j] and src[j] == opener:
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            i = j
        elif c.isalnum() or c in '_:':
            i -= 1
        else:
            break
    if i == end:
        raise TransformError('a launch without a kernel at ' + where(src, end))
    return i


def rewrite_launches(src, mask):
    edits = []
    for m in code_matches(r'<<<', src, mask):
        start = callee_start(src, mask, m.start())
        config_end = src.find('>>>', m.end())
        open_paren = config_end + 3
        while open_paren < len(src) and src[open_paren].isspace():
            open_paren += 1
        if config_end < 0 or src[open_paren] != '(':
            raise TransformError('a launch without arguments at ' + where(src, m.start()))
        close_paren = closing(src, mask, open_paren)
        config = split_top(src[m.end():config_end], ',')
        if not 2 <= len(config) <= 4:
            raise TransformError('a launch needs 2 to 4 configuration values at ' + where(src, m.start()))
        config += [' 0', ' nullptr'][len(config) - 2:]
        arguments = src[open_paren + 1:close_paren]
        text = '::emu::launch(%s, %s%s)' % (src[start:m.start()], ','.join(config).strip(),
                                            ', ' + arguments.strip() if arguments.strip() else '')
        edits.append((start, close_paren + 1, keep_lines(src[start:close_paren + 1], text)))
    return edits


# ---- __shared__ ------------------------------------------------------------------------------------------------------

TYPE = r'((?:(?:const|unsigned|signed|long|short)\s+)*[\w:]+(?:<[^;<>]*>)?)'
ALIGN = r'(?:__align__\(\s*\d+\s*\)\s+)?'  # every emulated shared array is 256-byte aligned


def rewrite_shared(src, mask):
    edits = []
    for m in code_matches(r'\bextern\s+__shared__\s+' + ALIGN + TYPE + r'\s+(\w+)\s*\[\s*\]\s*;', src, mask):
        text = '%s* %s = ::emu::dynamic_shared<%s>();' % (m.group(1), m.group(2), m.group(1))
        edits.append((m.start(), m.end(), keep_lines(m.group(0), text)))
    dynamic = [(start, end) for start, end, _ in edits]
    for m in code_matches(r'\b__shared__\s+' + ALIGN + TYPE + r'\s+(\w+)\s*((?:\[[^\]]+\]\s*)*);', src, mask):
        if any(start <= m.start() < end for start, end in dynamic):
            continue
        kind, name, extents = m.group(1), m.group(2), re.sub(r'\s+', '', m.group(3))
        text = 'static ::emu::StaticShared<%s%s> %s_emulated; auto& %s = %s_emulated.get();' % (
            kind, extents, name, name, name)
        edits.append((m.start(), m.end(), keep_lines(m.group(0), text)))
    return edits


# ---- inline PTX ------------------------------------------------------------------------------------------------------

def string_literals(text):
    """The concatenation of the C++ string literals that make up text (an asm template)."""
    pieces = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
    if not pieces or re.sub(r'"((?:[^"\\]|\\.)*)"', '', text).strip():
        raise TransformError('an asm template that is not a string literal: ' + text.strip())
    joined = ''.join(pieces)
    if '\\' in joined:
        raise TransformError('an asm template with escapes (several instructions?): ' + joined)
    return joined


def operand_list(section):
    """The C++ expressions of an asm operand section: "constraint"(expression), ..."""
    expressions = []
    for item in split_top(section, ','):
        if not item.strip():
            continue
        m = re.fullmatch(r'\s*"[=+&]*[a-zA-Z]+"\s*\((.*)\)\s*', item, re.S)
        if not m:
            raise TransformError('an asm operand it does not understand: ' + item.strip())
        expressions.append(m.group(1).strip())
    return expressions


def ptx_call(body, location):
    """asm(body) as a call to the emulation of its one instruction."""
    sections = split_top(body, ':')
    if len(sections) > 4:
        raise TransformError('asm goto is not emulated, at ' + location)
    template = string_literals(sections[0]).strip()
    operands = sum((operand_list(s) for s in sections[1:3]), [])
    if template.count(';') > 1 or not template.endswith(';') or '{' in template.split()[0]:
        raise TransformError('an asm statement that is not one instruction, at %s: %s' % (location, template))
    mnemonic, _, rest = template[:-1].partition(' ')
    arguments = []
    for token in re.split(r'[\s,{}\[\]]+', rest):
        if not token:
            continue
        if re.fullmatch(r'%\d+', token):
            arguments.append(operands[int(token[1:])])
        elif re.fullmatch(r'-?\d+', token):
            arguments.append(token)
        else:
            raise TransformError('an asm operand that is neither %%N nor a number, at %s: %s' % (location, token))
    name = re.sub(r'[.:]+', '_', mnemonic)
    return '::emu::ptx::%s(%s)' % (name, ', '.join(arguments))


def rewrite_asm(src, mask):
    edits = []
    for m in code_matches(r'\basm\b(\s+(?:volatile|__volatile__))?\s*\(', src, mask):
        close = closing(src, mask, m.end() - 1)
        text = ptx_call(src[m.end():close], where(src, m.start()))
        edits.append((m.start(), close + 1, keep_lines(src[m.start():close + 1], text)))
    return edits


# ---- tunables --------------------------------------------------------------------------------------------------------

def rewrite_tunables(src, mask, names):
    edits = []
    for name in names:
        found = code_matches(r'\bconstexpr\s+std::size_t\s+' + name + r'\s*=\s*([^;]+);', src, mask)
        if len(found) != 1:
            raise TransformError('tunable %s: %d constexpr std::size_t definitions, not 1' % (name, len(found)))
        m = found[0]
        text = 'const std::size_t& %s = ::emu::tunable("%s", %s);' % (name, name, m.group(1))
        edits.append((m.start(), m.end(), keep_lines(m.group(0), text)))
    return edits


# ---- checks ----------------------------------------------------------------------------------------------------------

UNREWRITTEN = r'<<<|\b__shared__\b|\basm\b'


def check_headers(path, seen):
    """Fails when a header that path includes (quoted, recursively) needs a rewrite: it is compiled as it is."""
    src = open(path).read()
    mask = code_mask(src)
    for m in re.finditer(r'^\s*#\s*include\s+"([^"]+)"', src, re.M):
        header = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1)))
        if header in seen or not os.path.exists(header):
            continue
        seen.add(header)
        header_src = open(header).read()
        found = code_matches(UNREWRITTEN, header_src, code_mask(header_src))
        if found:
            raise TransformError('%s (included by %s) has %s at %s: headers are not rewritten' % (
                header, path, found[0].group(0), where(header_src, found[0].start())))
        check_headers(header, seen)
    return mask


def transform(path, tunables):
    src = open(path).read()
    check_headers(path, set())
    mask = code_mask(src)
    edits = rewrite_launches(src, mask) + rewrite_shared(src, mask) + rewrite_asm(src, mask) + \
        rewrite_tunables(src, mask, tunables)
    out = replace_spans(src, edits)
    left = code_matches(UNREWRITTEN, out, code_mask(out))
    if left:
        raise TransformError('%s at %s was not rewritten (an unusual form?)' % (left[0].group(0),
                                                                              where(out, left[0].start())))
    return '// Generated by transform.py from %s: do not edit.\n#include "ptx.h"\n#line 1 "%s"\n%s' % (
        path, os.path.abspath(path), out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('source')
    parser.add_argument('output')
    parser.add_argument('--tunable', action='append', default=[], metavar='NAME')
    args = parser.parse_args()
    try:
        text = transform(args.source, args.tunable)
    except TransformError as e:
        sys.exit('transform.py: %s: %s' % (args.source, e))
    # Written only when it changes, so that an unchanged kernel is not rebuilt.
    if not os.path.exists(args.output) or open(args.output).read() != text:
        with open(args.output, 'w') as f:
            f.write(text)


if __name__ == '__main__':
    main()

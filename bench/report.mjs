// One HTML page of every recorded suite: its table (the same one the README shows) and its chart (the suite's SVG,
// inlined), with the machine and date each was measured on. Written as bench/results/report.html after a run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { tableFor } from './readme-table.mjs';

const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// Inline markdown (code spans, bold, links to charts) inside an already escaped line.
const inline = (s) => escape(s)
  .replace(/`([^`]+)`/g, '<code>$1</code>')
  .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
  .replace(/\[([^\]]+)\]\(([^)]+)\)/g, (_, text, href) => `<a href="${href.replace(/^bench\/results\//, '')}">${text}</a>`);

/** The markdown a suite's table is written in, as HTML: pipe tables, bullet lists and paragraphs. */
export function markdownToHtml(markdown) {
  const out = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('|')) {
      const rows = [];
      while (i < lines.length && lines[i].startsWith('|')) rows.push(lines[i++]);
      i--;
      const cells = (r) => r.slice(1, -1).split('|').map((c) => c.trim());
      const [head, , ...body] = rows;
      out.push('<table>', `<thead><tr>${cells(head).map((c) => `<th>${inline(c)}</th>`).join('')}</tr></thead>`, '<tbody>');
      for (const r of body) out.push(`<tr>${cells(r).map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`);
      out.push('</tbody></table>');
    } else if (line.startsWith('- ')) {
      out.push('<ul>');
      while (i < lines.length && lines[i].startsWith('- ')) out.push(`<li>${inline(lines[i++].slice(2))}</li>`);
      i--;
      out.push('</ul>');
    } else if (line.trim() !== '') out.push(`<p>${inline(line)}</p>`);
  }
  return out.join('\n');
}

/** Writes report.html into `dir` from its suites' JSON records and SVG charts; returns its path. */
export function writeReport(dir) {
  const suites = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))
    .filter((s) => typeof s.suite === 'string');
  const sections = suites.map((s) => {
    const svgFile = path.join(dir, `${s.suite}.svg`);
    const chart = fs.existsSync(svgFile) ? `<figure>${fs.readFileSync(svgFile, 'utf8').replace(/^<\?xml[^>]*>\s*/, '')}</figure>` : '';
    const body = s.markdown ?? (Array.isArray(s.cases) && s.cases.length ? tableFor(s) : '');
    return `<section id="${escape(s.suite)}">\n<h2>${escape(s.suite)}</h2>\n${markdownToHtml(body)}\n${chart}\n</section>`;
  });
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tessera benchmarks</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #111; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
ul { font-size: .9em; color: #333; } figure { margin: 1em 0; overflow-x: auto; } code { background: #f3f3f3; padding: 0 .2em; }
nav a { margin-right: 1em; }
</style>
</head>
<body>
<h1>Tessera benchmarks</h1>
<p>Each suite alternates Tessera with its named peers in one process and reports ratios; absolute times on a shared
machine drift, ratios from one run are the evidence. Generated ${new Date().toISOString().slice(0, 10)} from ${suites.length} recorded suites.</p>
<nav>${suites.map((s) => `<a href="#${escape(s.suite)}">${escape(s.suite)}</a>`).join(' ')}</nav>
${sections.join('\n')}
</body>
</html>
`;
  const file = path.join(dir, 'report.html');
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, file);
  return file;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dir = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'results'));
  console.log(writeReport(dir));
}

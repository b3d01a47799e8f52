// Builds the portal into --outdir (the build tree's portal/, never the source tree):
// esbuild bundles src/main.js and src/styles.css into assets/ under content-hashed names,
// then index.html is written from src/index.html pointing at them. The server caches
// assets/ for a year and revalidates index.html on every load.
//
//   node build.mjs --outdir ../build/debug/portal [--dev]
import { build } from 'esbuild';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => {
  const i = args.findIndex((a) => a === name || a.startsWith(name + '='));
  if (i < 0) return undefined;
  return args[i].includes('=') ? args[i].slice(name.length + 1) : args[i + 1];
};
const outdir = path.resolve(flag('--outdir') || path.join(here, '..', 'build', 'portal'));
const dev = args.includes('--dev');
const assets = path.join(outdir, 'assets');

// Old hashed files go: the directory holds exactly one build.
await rm(assets, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await build({
  entryPoints: { app: path.join(here, 'src', 'main.js'), styles: path.join(here, 'src', 'styles.css') },
  bundle: true,
  format: 'esm',
  splitting: true,
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: assets,
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  minify: !dev,
  sourcemap: dev ? 'linked' : false,
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': JSON.stringify(dev ? 'development' : 'production') },
});

// Find the entry outputs by their entry point.
let appJs, stylesCss;
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  const name = path.basename(file);
  if (meta.entryPoint.endsWith('main.js')) appJs = name;
  if (meta.entryPoint.endsWith('styles.css') && name.endsWith('.css')) stylesCss = name;
}
if (!appJs || !stylesCss) throw new Error('esbuild wrote no app bundle or stylesheet');
// An entry for a CSS file also writes an empty JS stub: drop it.
for (const f of await readdir(assets)) {
  if (f.startsWith('styles-') && f.endsWith('.js')) await rm(path.join(assets, f));
}

const template = await readFile(path.join(here, 'src', 'index.html'), 'utf8');
const html = template
  .replace('%STYLES%', `/assets/${stylesCss}`)
  .replace('%APP%', `/assets/${appJs}`);
await writeFile(path.join(outdir, 'index.html'), html);
console.log(`portal: ${path.relative(process.cwd(), outdir) || '.'} (${appJs}, ${stylesCss})`);

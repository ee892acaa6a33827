// biome-ignore-all lint/suspicious/noTemplateCurlyInString: GitHub expressions are written as ${{ }} inside plain strings
// Expression evaluation: a typical job `if:` evaluated 100k times through pipewright's
// evaluateCondition (parse cache + lazy context views) against, in the same process,
//  - naive use of @actions/expressions: lex + parse + convert the whole context every time;
//  - a hand-written JS closure doing the same comparison (the floor).
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';

// The lead wires expr/ into the package index; until then fall back to the built file.
let core = await import('@pipewright/core');
if (typeof core.evaluateCondition !== 'function') {
  core = await import(new URL('../packages/core/dist/expr/index.js', import.meta.url).href);
}
const { evaluateCondition, interpolate } = core;

const N = 100_000;
const cond = "github.event_name == 'push' && startsWith(github.ref, 'refs/heads/') && needs.build.result == 'success'";
const big = {};
for (let i = 0; i < 200; i++) big[`field_${i}`] = { value: i, nested: { list: [1, 2, 3], text: 'x'.repeat(50) } };
const ctx = {
  github: { event_name: 'push', ref: 'refs/heads/main', sha: 'abc', event: big },
  needs: { build: { result: 'success', outputs: { version: '1.0.0' } } },
  env: { CI: 'true' },
  matrix: { os: 'linux', node: 20 },
};
const status = { success: true, failure: false, cancelled: false };

function naive() {
  const tokens = new Lexer(cond).lex().tokens;
  const ast = new Parser(tokens, Object.keys(ctx), []).parse();
  const dict = JSON.parse(JSON.stringify(ctx), data.reviver);
  return new Evaluator(ast, dict).evaluate();
}

// Same, but with a context small enough that conversion is negligible: isolates lex + parse.
const smallCtx = { github: { event_name: 'push', ref: 'refs/heads/main' }, needs: ctx.needs };
const smallDict = JSON.parse(JSON.stringify(smallCtx), data.reviver);
function reparse() {
  const tokens = new Lexer(cond).lex().tokens;
  const ast = new Parser(tokens, Object.keys(ctx), []).parse();
  return new Evaluator(ast, smallDict).evaluate();
}

const floor = (c) =>
  c.github.event_name.toUpperCase() === 'PUSH' &&
  c.github.ref.toUpperCase().startsWith('REFS/HEADS/') &&
  c.needs.build.result.toUpperCase() === 'SUCCESS';

function time(label, n, fn) {
  for (let i = 0; i < Math.min(n, 2000); i++) fn(); // warm-up
  globalThis.gc?.();
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < n; i++) if (fn()) sink++;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (sink === 0) throw new Error(`${label}: condition unexpectedly false`);
  return { label, n, ms, perOp: (ms * 1000) / n };
}

const ours = time('pipewright evaluateCondition', N, () => evaluateCondition(cond, ctx, status));
const naiveN = 2_000; // much slower: measured on fewer iterations, reported per operation
const base = time('naive @actions/expressions (lex+parse+convert each time)', naiveN, () => naive().value);
const parseEach = time('@actions/expressions, lex+parse each time, tiny context', N, () => reparse().value);
const js = time('hand-written JS closure', N, () => floor(ctx));
const tpl = time('pipewright interpolate (2 expressions)', N, () =>
  interpolate('echo ${{ matrix.os }}-${{ needs.build.outputs.version }}', ctx),
);

for (const r of [ours, base, parseEach, js, tpl]) {
  console.log(
    `${r.label.padEnd(58)} ${r.n.toString().padStart(7)} ops ${r.ms.toFixed(1).padStart(8)} ms  ${r.perOp.toFixed(2).padStart(8)} us/op`,
  );
}
console.log(`evaluateCondition vs naive library use: ${(base.perOp / ours.perOp).toFixed(1)}x faster`);
console.log(`evaluateCondition vs lex+parse each time: ${(parseEach.perOp / ours.perOp).toFixed(1)}x faster`);
console.log(`evaluateCondition vs hand-written JS:   ${(ours.perOp / js.perOp).toFixed(1)}x slower`);
console.log(`100k evaluations of a typical if: ${ours.ms.toFixed(0)} ms`);

import {
  type Diagnostic,
  definePipeline,
  imageReferenceProblem,
  PipelineInvalidError,
  PipewrightError,
  parseDuration,
  parsePipeline,
  planPipeline,
  validatePipeline,
} from '@pipewright/core';
import { describe, expect, it } from 'vitest';

/** `line:col path: message` of every error, in file order. */
function errors(text: string): string[] {
  return validatePipeline(text, { file: 'p.yml' })
    .diagnostics.filter((d) => d.severity === 'error')
    .map(show);
}

function warnings(text: string, actions: string[] = []): string[] {
  return validatePipeline(text, { file: 'p.yml', actions })
    .diagnostics.filter((d) => d.severity === 'warning')
    .map(show);
}

function show(d: Diagnostic): string {
  return `${d.line}:${d.column} ${d.path}: ${d.message}`;
}

function thrown(fn: () => unknown): PipelineInvalidError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PipelineInvalidError);
    return err as PipelineInvalidError;
  }
  throw new Error('expected the call to throw');
}

describe('parsePipeline: broken pipelines point at the right line and column', () => {
  it('names a dependency cycle a -> b -> c -> a at the need that closes it', () => {
    const text = `jobs:
  a:
    needs: b
    steps: [{run: echo a}]
  b:
    needs: [c]
    steps: [{run: echo b}]
  c:
    needs: [a]
    steps: [{run: echo c}]
`;
    expect(errors(text)).toEqual(['3:12 jobs.a.needs: dependency cycle: a -> b -> c -> a']);
    const err = thrown(() => parsePipeline(text, { file: 'p.yml' }));
    expect(err.code).toBe('PIPELINE_CYCLE');
    expect(err.message).toContain('p.yml:3:12');
  });

  it('reports every separate cycle of a file, still as PIPELINE_CYCLE', () => {
    const text = `jobs:
  a: {needs: b, steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
  c: {needs: d, steps: [{run: x}]}
  d: {needs: c, steps: [{run: x}]}
`;
    expect(errors(text)).toEqual([
      '2:14 jobs.a.needs: dependency cycle: a -> b -> a',
      '4:14 jobs.c.needs: dependency cycle: c -> d -> c',
    ]);
    expect(thrown(() => parsePipeline(text, { file: 'p.yml' })).code).toBe('PIPELINE_CYCLE');
  });

  it('rejects a static matrix that yields no job (no axis, or every combination excluded)', () => {
    const text = `jobs:
  a:
    strategy: {matrix: {os: [linux], exclude: [{os: Linux}]}}
    steps: [{run: x}]
  e:
    strategy: {matrix: {}}
    steps: [{run: x}]
  b:
    needs: [a, e]
    steps: [{run: x}]
`;
    expect(errors(text)).toEqual([
      '3:24 jobs.a.strategy.matrix: the matrix yields no job: it has no axis and no `include`, or `exclude` removes every combination; give it at least one combination',
      '6:24 jobs.e.strategy.matrix: the matrix yields no job: it has no axis and no `include`, or `exclude` removes every combination; give it at least one combination',
    ]);
  });

  it('checks workflow_dispatch inputs as GitHub does: keys, types, choice options, defaults of the type', () => {
    const text = `on:
  workflow_dispatch:
    inputs:
      a: {type: strng, defualt: 1}
      b: {type: choice}
      c: {type: boolean, default: maybe}
      d: {type: choice, options: [x, y], default: z}
      e: {type: number, default: '3'}
      f: {type: boolean, default: 'true'}
jobs:
  j: {runs-on: x, steps: [{run: x}]}
`;
    expect(errors(text)).toEqual([
      '4:17 on.workflow_dispatch.inputs.a.type: input type must be one of string, boolean, number, choice, environment; did you mean `string`?',
      '4:24 on.workflow_dispatch.inputs.a.defualt: unknown key `defualt` in an input; did you mean `default`?',
      '5:10 on.workflow_dispatch.inputs.b: input `b` of type choice needs a non-empty `options` list',
      '6:35 on.workflow_dispatch.inputs.c.default: the default must be a boolean',
      '7:51 on.workflow_dispatch.inputs.d.default: the default must be one of the options',
    ]);
    // Quoted defaults of number and boolean inputs are taken as numbers and booleans.
    const ok = text.replace(/ {6}[abcd]: .*\n/g, '');
    expect(parsePipeline(ok).spec.inputs).toMatchObject({ e: { default: 3 }, f: { default: true } });
  });

  it('reports a bad matrix also when the file has other errors', () => {
    const text = `jobs:
  a:
    runs-on: x
    strategy: {matrix: {os: []}}
    steps: [{run: x}]
  b:
    runs-on: x
    timeout-minutez: 3
    steps: [{run: x}]
`;
    expect(errors(text)).toEqual([
      "4:24 jobs.a.strategy.matrix: Matrix axis 'os' does not contain any values; give it at least one.",
      '8:5 jobs.b.timeout-minutez: unknown key `timeout-minutez` in a job; did you mean `timeout-minutes`?',
    ]);
  });

  it('reports an unknown need with the job list, and a self need', () => {
    const text = `jobs:
  build:
    steps: [{run: make}]
  test:
    needs: [build, deploy, test]
    steps: [{run: make test}]
`;
    expect(errors(text)).toEqual([
      '5:20 jobs.test.needs[1]: job `test` needs unknown job `deploy` (jobs: build, test)',
      '5:28 jobs.test.needs[2]: dependency cycle: test -> test (the job needs itself)',
    ]);
    expect(thrown(() => parsePipeline(text)).code).toBe('PIPELINE_INVALID');
  });

  it('caps matrix include/exclude lists at 256 entries, so validation stays fast on hostile input', () => {
    const entries = Array.from({ length: 4000 }, (_, i) => `        - { a: ${i + 1000} }`).join('\n');
    const text = `jobs:\n  t:\n    runs-on: x\n    strategy:\n      matrix:\n        a: [1, 2]\n        exclude:\n${entries}\n    steps: [{run: x}]\n`;
    const began = Date.now();
    expect(errors(text)).toEqual([
      expect.stringMatching(/^8:9 jobs\.t\.strategy\.matrix\.exclude: expected at most 256 `exclude` entries/),
    ]);
    expect(Date.now() - began).toBeLessThan(5000);
  });

  it('does not take names of Object.prototype members for jobs', () => {
    const text = `jobs:
  build:
    steps: [{run: make}]
  test:
    needs: [toString, constructor]
    steps: [{run: make test}]
`;
    expect(errors(text)).toEqual([
      '5:13 jobs.test.needs[0]: job `test` needs unknown job `toString` (jobs: build, test)',
      '5:23 jobs.test.needs[1]: job `test` needs unknown job `constructor` (jobs: build, test)',
    ]);
  });

  it('suggests the closest job for a misspelt need', () => {
    const text = `jobs:
  build:
    steps: [{run: make}]
  test:
    needs: biuld
    steps: [{run: make test}]
`;
    expect(errors(text)).toEqual(['5:12 jobs.test.needs: job `test` needs unknown job `biuld`; did you mean `build`?']);
  });

  it('reports a typo in a key at the key, with "did you mean"', () => {
    const text = `jobs:
  build:
    runs-on: ubuntu-latest
    neds: lint
    steps:
      - run: make
        timeot: 5m
`;
    expect(errors(text)).toEqual([
      '4:5 jobs.build.neds: unknown key `neds` in a job; did you mean `needs`?',
      '7:9 jobs.build.steps[0].timeot: unknown key `timeot` in a step; did you mean `timeout`?',
    ]);
  });

  it('suggests the key for a typo in the run-level concurrency too', () => {
    expect(
      errors('concurrency: {group: g, cancel-in-progres: true}\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n'),
    ).toEqual([
      '1:25 concurrency.cancel-in-progres: unknown key `cancel-in-progres` in a concurrency; did you mean `cancel-in-progress`?',
    ]);
  });

  it('lists the known keys when an unknown key is not close to any', () => {
    const [msg] = errors('jobs:\n  a:\n    steps: [{run: x}]\nzzzzzz: 1\n');
    expect(msg).toMatch(/^4:1 zzzzzz: unknown key `zzzzzz` in a pipeline \(expected one of: name, .*jobs/);
  });

  it('reports `steps: 3` as a wrong type, not as a missing key', () => {
    const text = 'jobs:\n  a:\n    steps: 3\n';
    expect(errors(text)).toEqual(['3:12 jobs.a.steps: expected a list of steps, got `3` (number)']);
  });

  it('reports wrong types with what was expected and what was found', () => {
    const text = `jobs:
  a:
    timeout-minutes: soon
    continue-on-error: maybe
    env: [A, B]
    steps:
      - run: [echo, hi]
`;
    expect(errors(text)).toEqual([
      '3:22 jobs.a.timeout-minutes: expected a positive number of minutes or an expression, got `"soon"` (string)',
      '4:24 jobs.a.continue-on-error: expected true, false or an expression, got `"maybe"` (string)',
      '5:10 jobs.a.env: expected a mapping of NAME: value, got a list',
      '7:14 jobs.a.steps[0].run: expected the script (a string), got a list',
    ]);
  });

  it('reports a missing required key where it is missing', () => {
    expect(errors('name: x\n')).toEqual(['1:1 : missing required key `jobs`']);
    expect(errors('jobs:\n  a:\n    container: {env: {A: 1}}\n    steps: [{run: x}]\n')).toEqual([
      '3:16 jobs.a.container: missing required key `image`',
    ]);
  });

  it('reports bad durations in the extensions', () => {
    const text = `timeout: forever
jobs:
  a:
    timeout: 5 minutes
    kill-grace: -3
    retry:
      backoff: {delay: 2x}
    steps:
      - run: x
        timeout: 1h30
`;
    expect(errors(text)).toEqual([
      '1:10 timeout: expected a duration such as `90s`, `5m` or `1h30m`, got `"forever"` (string)',
      '4:14 jobs.a.timeout: expected a duration such as `90s`, `5m` or `1h30m`, got `"5 minutes"` (string)',
      '5:17 jobs.a.kill-grace: expected a non-negative number of seconds, got `-3` (number)',
      '7:24 jobs.a.retry.backoff.delay: expected a duration such as `90s`, `5m` or `1h30m`, got `"2x"` (string)',
      '10:18 jobs.a.steps[0].timeout: expected a duration such as `90s`, `5m` or `1h30m`, got `"1h30"` (string)',
    ]);
    // A bare number is the likeliest mistake: the message says a unit is missing.
    expect(errors('jobs:\n  a:\n    timeout: 90\n    steps: [{run: x}]\n')).toEqual([
      '3:14 jobs.a.timeout: expected a duration with its unit, such as `90s` or `90m` (a bare number is not a duration), got `90` (number)',
    ]);
  });

  it('reports a duplicate step id at the second one', () => {
    const text = `jobs:
  a:
    steps:
      - id: build
        run: make
      - id: build
        run: make again
`;
    expect(errors(text)).toEqual([
      '6:13 jobs.a.steps[1].id: duplicate step id `build` (also used by step 1 of job `a`)',
    ]);
  });

  it('reports bad expression syntax inside the scalar', () => {
    const text = `jobs:
  a:
    if: github.ref ==
    steps:
      - run: echo \${{ matrix. }}
      - name: "quoted \${{ 1 + }}"
        run: x
      - run: |
          echo fine
          echo \${{ fromJSON( }}
`;
    const errs = errors(text);
    expect(errs).toHaveLength(4);
    expect(errs[0]).toMatch(/^3:22 jobs\.a\.if: invalid expression: /);
    expect(errs[1]).toMatch(/^5:30 jobs\.a\.steps\[0\]\.run: invalid expression: /);
    expect(errs[2]).toMatch(/^6:29 jobs\.a\.steps\[1\]\.name: invalid expression: /);
    expect(errs[3]).toMatch(/^10:29 jobs\.a\.steps\[2\]\.run: invalid expression: /);
  });

  it('keeps two equal bad expressions apart in escaped and folded scalars', () => {
    const text = `jobs:
  a:
    runs-on: x
    steps:
      - run: "echo \\"q\\" \${{ foo }} and \${{ foo }}"
      - run: >
          echo \${{ foo }}
          echo \${{ foo }}
`;
    expect(errors(text).map((e) => e.split(' ')[0])).toEqual(['5:30', '5:45', '7:20', '8:20']);
  });

  it('reports an unterminated ${{', () => {
    expect(errors('jobs:\n  a:\n    steps:\n      - run: echo ${{ github.sha\n')).toEqual([
      '4:19 jobs.a.steps[0].run: invalid expression: The expression is not closed: this `${{` has no matching `}}`',
    ]);
  });

  it('reports every problem of a file, not only the first', () => {
    const text = `name: many
jobs:
  build:
    runs-on: ubuntu-latest
    timeout: 5 minutes
    steps:
      - id: s1
        run: echo \${{ matrix. }}
      - id: s1
        run: echo
  test:
    needs: [build, nope]
    steps: 3
    retry: {max-attempts: 0}
  lint:
    steps:
      - name: nothing to do
`;
    const err = thrown(() => parsePipeline(text, { file: 'many.yml' }));
    expect(err.code).toBe('PIPELINE_INVALID');
    expect(err.diagnostics.filter((d) => d.severity === 'error').map(show)).toEqual([
      '5:14 jobs.build.timeout: expected a duration such as `90s`, `5m` or `1h30m`, got `"5 minutes"` (string)',
      "8:30 jobs.build.steps[0].run: invalid expression: Unexpected symbol: 'EOF'",
      '9:13 jobs.build.steps[1].id: duplicate step id `s1` (also used by step 1 of job `build`)',
      '12:20 jobs.test.needs[1]: job `test` needs unknown job `nope` (jobs: build, test, lint)',
      '13:12 jobs.test.steps: expected a list of steps, got `3` (number)',
      '14:27 jobs.test.retry.max-attempts: expected at least 1, got `0` (number)',
      '17:9 jobs.lint.steps[0]: a step needs `run` (a script) or `uses` (a registered action)',
    ]);
    expect(err.message).toContain('many.yml:5:14: expected a duration');
    expect(err.message).toContain('(7 errors)');
  });

  it('reports YAML syntax errors and duplicate keys with positions', () => {
    expect(errors('jobs:\n  a:\n    steps: [{run: x}\n')[0]).toMatch(/^\d+:\d+ : YAML syntax: /);
    expect(errors('jobs:\n  a:\n    steps: [{run: x}]\n  a:\n    steps: [{run: y}]\n')).toEqual([
      '4:3 : duplicate key `a`: each key may appear once in a mapping',
    ]);
  });

  it('rejects `secrets` where the scheduler decides before secrets exist (job if, strategy, ...), as GitHub does', () => {
    const text =
      "jobs:\n  a:\n    runs-on: x\n    if: secrets.TOK != ''\n    timeout-minutes: ${{ secrets.T }}\n    env: { T: '${{ secrets.TOK }}' }\n    steps: [{ run: 'echo ${{ secrets.TOK }}', if: \"env.T != ''\" }]\n";
    expect(errors(text)).toEqual([
      "4:9 jobs.a.if: `secrets` is not available in `jobs.a.if` (GitHub allows it in steps, their env and with, and job env/outputs); put the secret in an `env:` and test `env.NAME` in a step's `if:`",
      "5:26 jobs.a.timeout-minutes: `secrets` is not available in `jobs.a.timeout-minutes` (GitHub allows it in steps, their env and with, and job env/outputs); put the secret in an `env:` and test `env.NAME` in a step's `if:`",
    ]);
  });

  it('rejects a shell that can never run (an unknown name, a template without {0}); cmd only warns', () => {
    const text =
      "jobs:\n  a:\n    runs-on: x\n    defaults: { run: { shell: fish } }\n    steps:\n      - { run: x, shell: 'bash -e' }\n      - { run: x, shell: 'perl {0}' }\n      - { run: x, shell: cmd }\n";
    expect(errors(text)).toEqual([
      '4:31 jobs.a.defaults.run.shell: Unsupported shell `fish`: use bash, sh, python, pwsh, powershell or a command template containing {0} (e.g. `perl {0}`)',
      '6:26 jobs.a.steps[0].shell: Unsupported shell `bash -e`: use bash, sh, python, pwsh, powershell or a command template containing {0} (e.g. `perl {0}`)',
    ]);
    // Keys named `shell` elsewhere are data: an env var, an action input, an output.
    expect(
      errors(
        'jobs:\n  a:\n    runs-on: x\n    env: { shell: fish }\n    outputs: { shell: zsh }\n    steps: [{ uses: retry, with: { shell: zsh } }]\n',
      ),
    ).toEqual([]);
    const cmd = validatePipeline('jobs:\n  a:\n    runs-on: x\n    steps: [{ run: x, shell: cmd }]\n');
    expect(cmd.diagnostics.map((d) => [d.severity, d.message])).toEqual([
      ['warning', '`cmd` is a Windows shell; this step fails when pipewright runs it'],
    ]);
  });

  it('rejects a container image that is no image reference', () => {
    expect(
      errors(
        'jobs:\n  a:\n    runs-on: x\n    container: "x/"\n    steps: [{ run: x }]\n  b:\n    runs-on: x\n    container: { image: "ghcr.io/org/app:1.2" }\n    steps: [{ run: x }]\n',
      ),
    ).toEqual([
      '4:16 jobs.a.container: `x/` is not an image reference: use [registry/]name[:tag][@digest] with a lowercase name, e.g. `debian:12` or `ghcr.io/org/app:1.2`',
    ]);
  });

  it('warns where a context is used that GitHub does not make available there (it refuses the file)', () => {
    const r = validatePipeline(
      [
        'env:',
        '  A: x',
        '  B: ${{ env.A }}',
        'jobs:',
        '  a:',
        '    runs-on: x',
        '    strategy: { matrix: { n: [1, 2] } }',
        '    if: matrix.n == 1',
        '    env: { R: "${{ runner.temp }}/x", M: "${{ matrix.n }}" }',
        '    outputs: { o: "${{ steps.s.outputs.o }}" }',
        '    steps:',
        "      - { id: s, run: 'echo ${{ runner.os }} ${{ env.R }} ${{ job.status }} ${{ steps.x.outputs.y }}' }",
        '      - { run: "echo ${{ format(\'env.A\') }}" }',
        '  b:',
        '    runs-on: x',
        '    container:',
        '      image: debian',
        '      credentials: { username: "${{ env.A }}", password: "${{ secrets.P }}" }',
        '    steps: [{ run: x }]',
      ].join('\n'),
    );
    expect(r.diagnostics.map((d) => [d.severity, d.path, d.message.replace(/ \(available.*/, '')])).toEqual([
      ['warning', 'env.B', '`env` is not available here on GitHub, which refuses the file'],
      ['warning', 'jobs.a.if', '`matrix` is not available here on GitHub, which refuses the file'],
      ['warning', 'jobs.a.env.R', '`runner` is not available here on GitHub, which refuses the file'],
    ]);
    expect(r.diagnostics[1]?.message).toMatch(/available: github, needs, vars, inputs\); pipewright evaluates it/);
  });

  it('warns about an `if:` block whose ${{ }} has whitespace around it (always true on GitHub)', () => {
    const r = validatePipeline(
      'jobs:\n  a:\n    runs-on: x\n    if: >\n      ${{ false }}\n    steps:\n      - run: x\n        if: ${{ false }}\n      - run: y\n        if: "${{ true }} "\n',
    );
    expect(r.diagnostics.map((d) => [d.severity, d.path])).toEqual([
      ['warning', 'jobs.a.if'],
      ['warning', 'jobs.a.steps[1].if'],
    ]);
    expect(r.diagnostics[0]?.message).toMatch(/GitHub takes that for text, always true; pipewright evaluates/);
  });

  it('warns where hashFiles() is called (not supported: it fails at run time), not where the name is only text', () => {
    const r = validatePipeline(
      [
        'jobs:',
        '  a:',
        '    runs-on: x',
        '    steps:',
        "      - run: echo ${{ hashFiles('go.sum') }}",
        '      - run: echo "${{ format(\'hashFiles(x)\') }} hashFiles(y)"',
      ].join('\n'),
    );
    expect(r.diagnostics.map((d) => [d.severity, d.path, d.message.replace(/ \(.*/, '')])).toEqual([
      ['warning', 'jobs.a.steps[0].run', '`hashFiles()` is not supported: evaluating it fails the step or job'],
    ]);
  });

  it('reads expressions as the evaluator does: a `}}` inside a string literal neither ends one nor hides a context', () => {
    const r = validatePipeline(
      [
        'jobs:',
        '  a:',
        '    runs-on: x',
        // `matrix` after a quoted '}}' is still a read (the regex stopped at the quote's `}}`).
        "    if: ${{ format('{0}}}', github.ref) && matrix.n }}",
        '    steps:',
        // Two expressions with whitespace around: text on both platforms, not one expression.
        '      - run: x',
        '        if: " ${{ true }} ${{ false }} "',
        // A quoted `}}` inside one expression, with whitespace around: still one expression.
        '      - run: y',
        "        if: \" ${{ format('}}') == 'x' }} \"",
      ].join('\n'),
    );
    expect(r.diagnostics.map((d) => [d.severity, d.path, d.message.replace(/ \(.*/, '')])).toEqual([
      ['warning', 'jobs.a.if', '`matrix` is not available here on GitHub, which refuses the file'],
      ['warning', 'jobs.a.steps[1].if', '`if:` has whitespace around its ${{ }}'],
    ]);
  });

  it('takes an uppercase first component for a registry only with a `.` or `:` in it, as Docker does', () => {
    expect(imageReferenceProblem('UPPER/x')).toMatch(/not an image reference/);
    expect(imageReferenceProblem('Org/app:1')).toMatch(/not an image reference/);
    for (const ok of ['Registry.Example.com/app:1', 'MyHost:5000/app', 'localhost/app', 'org/app', 'app']) {
      expect(imageReferenceProblem(ok), ok).toBeUndefined();
    }
  });

  it('rejects `__proto__` as a key anywhere, with its position, instead of dropping it', () => {
    expect(
      errors(
        'jobs:\n  __proto__:\n    runs-on: x\n    steps: [{run: x}]\n  b:\n    runs-on: x\n    env: { __proto__: 1 }\n    steps: [{run: x}]\n',
      ),
    ).toEqual([
      '2:3 : `__proto__` cannot be a key (a job id, env name, input, output or matrix axis); rename it',
      '7:12 : `__proto__` cannot be a key (a job id, env name, input, output or matrix axis); rename it',
    ]);
  });

  it('rejects a document that is not a mapping', () => {
    expect(errors('- a\n- b\n')).toEqual(['1:1 : a pipeline is a mapping with at least a `jobs:` key']);
    expect(errors('')).toEqual(['1:1 : a pipeline is a mapping with at least a `jobs:` key']);
  });
});

describe('parsePipeline: warnings', () => {
  it('warns about GitHub keys pipewright ignores, at the key', () => {
    const text = `permissions: read-all
jobs:
  deploy:
    permissions: {contents: read}
    environment: production
    services:
      redis: {image: redis}
    steps: [{run: ./deploy}]
`;
    expect(warnings(text)).toEqual([
      '1:1 permissions: `permissions` is a GitHub key pipewright ignores',
      '4:5 jobs.deploy.permissions: `permissions` is a GitHub key pipewright ignores',
      '5:5 jobs.deploy.environment: `environment` is a GitHub key pipewright ignores',
      '6:5 jobs.deploy.services: `services` is a GitHub key pipewright ignores',
    ]);
    const { spec } = parsePipeline(text);
    expect(Object.keys(spec.jobs)).toEqual(['deploy']);
  });

  it('warns about an `on:` event GitHub does not know, with the closest one', () => {
    expect(
      warnings('on: {pusj: {branches: [main]}, workflow_dispatch: {}}\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n'),
    ).toEqual(['1:6 on.pusj: `pusj` is not a GitHub event; did you mean `push`?']);
    expect(warnings('on: [push, pul_request]\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n')).toEqual([
      '1:12 on[1]: `pul_request` is not a GitHub event; did you mean `pull_request`?',
    ]);
    expect(warnings('on: schedule\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n')).toEqual([]);
  });

  it('warns about unregistered `uses:` steps but not registered ones', () => {
    const text = `jobs:
  a:
    steps:
      - uses: actions/checkout@v4
      - uses: my/action
`;
    expect(warnings(text, ['my/action'])).toEqual([
      '4:15 jobs.a.steps[0].uses: action `actions/checkout@v4` is not registered; the step will fail at run time unless the engine registers it (engine.registerAction)',
    ]);
    expect(warnings(text, ['my/action', 'actions/checkout@v4'])).toEqual([]);
  });

  it('warns about job-level `uses:` and keeps the job in the plan', () => {
    const text = `jobs:
  build:
    steps: [{run: make}]
  release:
    needs: build
    uses: org/repo/.github/workflows/release.yml@main
    with: {tag: v1}
    secrets: inherit
`;
    const { spec, warnings: ws } = parsePipeline(text, { file: 'r.yml' });
    expect(ws.map(show)).toEqual([
      '6:11 jobs.release.uses: job `release` calls a reusable workflow (`uses: org/repo/.github/workflows/release.yml@main`); pipewright does not run those, the job will fail at run time',
    ]);
    expect(spec.jobs.release?.uses).toBe('org/repo/.github/workflows/release.yml@main');
    expect(spec.jobs.release?.steps).toEqual([]);
    const plan = planPipeline(spec);
    expect(plan.jobs.map((j) => [j.id, j.needs])).toEqual([
      ['build', []],
      ['release', ['build']],
    ]);
  });

  it('rejects `steps` beside a job-level `uses`', () => {
    expect(errors('jobs:\n  a:\n    uses: o/r/.github/workflows/x.yml@v1\n    steps: [{run: x}]\n')).toEqual([
      '4:12 jobs.a.steps: a job with `uses` cannot have `steps`',
    ]);
  });
});

describe('parsePipeline: values', () => {
  it('parses durations 90s, 5m, 1h30m', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    for (const bad of ['', '5', 'm5', '1h30', '-5m', '5 m', '5min']) expect(parseDuration(bad)).toBeUndefined();
    const { spec } = parsePipeline(`timeout: 1h30m
jobs:
  a:
    timeout: 5m
    kill-grace: 3
    retry: {max-attempts: 3, on: [failure], backoff: {delay: 2s, max-delay: 1m, jitter: equal}, max-duration: 30m}
    steps:
      - run: x
        timeout: 90s
        kill-grace: 500ms
`);
    expect(spec.timeoutMs).toBe(5_400_000);
    const a = spec.jobs.a;
    expect(a?.timeoutMs).toBe(300_000);
    expect(a?.killGraceMs).toBe(3000);
    expect(a?.retry).toEqual({
      maxAttempts: 3,
      on: ['failure'],
      backoff: { delayMs: 2000, factor: 2, maxDelayMs: 60_000, jitter: 'equal' },
      maxDurationMs: 1_800_000,
      differentWorker: true,
    });
    expect(a?.steps[0]?.timeoutMs).toBe(90_000);
    expect(a?.steps[0]?.killGraceMs).toBe(500);
  });

  it('lets `timeout` win over `timeout-minutes`, and defaults jobs to 360 minutes', () => {
    const { spec } = parsePipeline(`jobs:
  a: {timeout: 2m, timeout-minutes: 10, steps: [{run: x}]}
  b: {timeout-minutes: 10, steps: [{run: x}]}
  c: {steps: [{run: x}]}
`);
    expect([spec.jobs.a?.timeoutMs, spec.jobs.b?.timeoutMs, spec.jobs.c?.timeoutMs]).toEqual([
      120_000, 600_000, 21_600_000,
    ]);
  });

  it('accepts `needs` as a string or a list', () => {
    const { spec } = parsePipeline(`jobs:
  a: {steps: [{run: x}]}
  b: {needs: a, steps: [{run: x}]}
  c: {needs: [a, b], steps: [{run: x}]}
`);
    expect(spec.jobs.b?.needs).toEqual(['a']);
    expect(spec.jobs.c?.needs).toEqual(['a', 'b']);
    expect(planPipeline(spec).order).toEqual(['a', 'b', 'c']);
  });
});

describe('definePipeline: the typed object form', () => {
  it('validates an object with the same rules and returns the spec', () => {
    const spec = definePipeline({
      name: 'typed',
      jobs: {
        build: { 'runs-on': 'local', steps: [{ id: 'make', run: 'make' }], timeout: '5m' },
        test: { needs: 'build', strategy: { matrix: { node: [18, 20] } }, steps: [{ run: 'npm test' }] },
      },
    });
    expect(spec.name).toBe('typed');
    expect(spec.jobs.build?.timeoutMs).toBe(300_000);
    expect(spec.jobs.test?.needs).toEqual(['build']);
    expect(planPipeline(spec).jobs.map((j) => j.id)).toEqual(['build', 'test (18)', 'test (20)']);
  });

  it('throws PIPELINE_INVALID with the YAML path of each problem', () => {
    const err = thrown(() =>
      definePipeline({
        jobs: {
          // @ts-expect-error a typo the types catch too
          a: { neds: 'b', steps: [{ run: 'x' }] },
          b: { needs: ['a', 'zz'], steps: [{ run: 'x', timeout: 'soon' }] },
        },
      }),
    );
    expect(err).toBeInstanceOf(PipewrightError);
    expect(err.code).toBe('PIPELINE_INVALID');
    expect(err.diagnostics.map((d) => `${d.file} ${d.path}: ${d.message}`)).toEqual(
      expect.arrayContaining([
        '<object> jobs.a.neds: unknown key `neds` in a job; did you mean `needs`?',
        '<object> jobs.b.needs[1]: job `b` needs unknown job `zz` (jobs: a, b)',
        '<object> jobs.b.steps[0].timeout: expected a duration such as `90s`, `5m` or `1h30m`, got `"soon"` (string)',
      ]),
    );
  });

  it('names a cycle in the object form', () => {
    const err = thrown(() =>
      definePipeline({
        jobs: {
          a: { needs: 'b', steps: [{ run: 'x' }] },
          b: { needs: 'c', steps: [{ run: 'x' }] },
          c: { needs: 'a', steps: [{ run: 'x' }] },
        },
      }),
    );
    expect(err.code).toBe('PIPELINE_CYCLE');
    expect(err.diagnostics[0]?.message).toBe('dependency cycle: a -> b -> c -> a');
  });
});

import { z } from 'zod';
import { parseDuration } from './duration.js';

/*
 * The pipeline schema as written in YAML (GitHub Actions keys plus pipewright's
 * extensions). Objects are strict: unknown keys are errors. Keys GitHub defines but
 * pipewright ignores are accepted here and reported as warnings by the parser
 * (see IGNORED_KEYS).
 */

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()], {
  error: 'expected a string, number or boolean',
});
const envMap = z.record(z.string(), scalar, { error: 'expected a mapping of NAME: value' });
const MAX_MATRIX_ENTRIES = 256;
const combinationList = (key: string) =>
  z.array(z.record(z.string(), z.unknown())).max(MAX_MATRIX_ENTRIES, {
    error: `expected at most ${MAX_MATRIX_ENTRIES} \`${key}\` entries (GitHub's matrix limit)`,
  });
const expressionString = z.string().regex(/\$\{\{/, 'expected an expression `${{ ... }}`');

const stringOrList = z.union([z.string(), z.array(z.string(), { error: 'expected a list of strings' })], {
  error: 'expected a string or a list of strings',
});

const durationString = z
  .string({
    // A bare number has no unit: say so, rather than zod's "expected string, received number".
    error: (issue) =>
      typeof issue.input === 'number'
        ? `expected a duration with its unit, such as \`${issue.input}s\` or \`${issue.input}m\` (a bare number is not a duration)`
        : 'expected a duration such as `90s`, `5m` or `1h30m`',
  })
  .refine((s) => parseDuration(s) !== undefined, {
    error: 'expected a duration such as `90s`, `5m` or `1h30m`',
  });
/**
 * A value or an expression string. A plain union would report a non-expression string with the
 * expression branch's message alone (`expected an expression`), hiding that a value was allowed.
 */
function orExpression<T extends z.ZodType>(schema: T, message: string) {
  return z
    .union([schema, z.string()], { error: message })
    .refine((v) => typeof v !== 'string' || v.includes('${{'), { error: message });
}
const positiveNumber = z.number().positive('expected a positive number');
const minutes = orExpression(positiveNumber, 'expected a positive number of minutes or an expression');
const boolOrExpr = orExpression(z.boolean(), 'expected true, false or an expression');
/** `kill-grace`: seconds as a number, or a duration string. */
const killGrace = z.union([z.number().nonnegative('expected a non-negative number of seconds'), durationString], {
  error: 'expected seconds (a number) or a duration such as `10s`',
});

export const retryRaw = z.strictObject({
  'max-attempts': z
    .number()
    .int('expected an integer')
    .min(1, 'expected at least 1')
    .max(100, 'expected at most 100')
    .optional(),
  on: z
    .array(z.enum(['failure', 'timeout', 'infra'], { error: 'expected one of `failure`, `timeout`, `infra`' }), {
      error: 'expected a list of `failure`, `timeout`, `infra`',
    })
    .optional(),
  'exit-codes': z
    .array(z.number().int('expected an integer exit code'), { error: 'expected a list of exit codes' })
    .optional(),
  backoff: z
    .strictObject({
      delay: durationString.optional(),
      factor: z.number().min(1, 'expected a factor >= 1').optional(),
      'max-delay': durationString.optional(),
      jitter: z.enum(['full', 'equal', 'none'], { error: 'expected `full`, `equal` or `none`' }).optional(),
    })
    .optional(),
  'max-duration': durationString.optional(),
  'different-worker': z.boolean({ error: 'expected true or false' }).optional(),
});

const concurrencyRaw = z.union(
  [
    z.string(),
    z.strictObject({
      group: z.string({ error: 'expected the group name (a string)' }),
      'cancel-in-progress': boolOrExpr.optional(),
    }),
  ],
  { error: 'expected a group name or `{group, cancel-in-progress}`' },
);

const defaultsRaw = z.strictObject({
  run: z
    .strictObject({
      shell: z.string().optional(),
      'working-directory': z.string().optional(),
    })
    .optional(),
});

const matrixValueList = z.union([z.array(z.unknown()), expressionString], {
  error: 'expected a list of values or an expression',
});
const matrixRaw = z.union(
  [
    expressionString,
    z
      .object({
        // GitHub caps a matrix at 256 jobs; the same cap on the lists keeps validation linear on hostile input.
        include: z.union([combinationList('include'), expressionString]).optional(),
        exclude: z.union([combinationList('exclude'), expressionString]).optional(),
      })
      .catchall(matrixValueList),
  ],
  { error: 'expected a matrix (a mapping of axes) or an expression' },
);

const strategyRaw = z.strictObject({
  matrix: matrixRaw.optional(),
  'fail-fast': boolOrExpr.optional(),
  'max-parallel': orExpression(
    z.number().int('expected a positive integer').positive('expected a positive integer'),
    'expected a positive integer or an expression',
  ).optional(),
});

const containerRaw = z.union(
  [
    z.string(),
    z.strictObject({
      image: z.string({ error: 'expected the image name' }),
      env: envMap.optional(),
      options: z.string().optional(),
      volumes: z.array(z.string()).optional(),
      ports: z.array(scalar).optional(),
      credentials: z.unknown().optional(),
      cpus: z.number().positive().optional(),
      memory: z.string().optional(),
      network: z.string().optional(),
    }),
  ],
  { error: 'expected an image name or `{image, env, options, volumes}`' },
);

const runsOnRaw = z.union(
  [z.string(), z.array(z.string()), z.strictObject({ group: z.string().optional(), labels: stringOrList.optional() })],
  { error: 'expected a label, a list of labels or `{group, labels}`' },
);

const stepShape = {
  id: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'expected an id of letters, digits, `-` and `_`')
    .optional(),
  name: z.string().optional(),
  if: z.union([z.string(), z.boolean()], { error: 'expected an expression' }).optional(),
  run: z.string({ error: 'expected the script (a string)' }).optional(),
  uses: z.string().optional(),
  with: envMap.optional(),
  shell: z.string().optional(),
  'working-directory': z.string().optional(),
  env: envMap.optional(),
  'timeout-minutes': minutes.optional(),
  'continue-on-error': boolOrExpr.optional(),
  timeout: durationString.optional(),
  retry: retryRaw.optional(),
  'kill-grace': killGrace.optional(),
};
const leafStepRaw = z.strictObject(stepShape);
export const stepRaw = z.strictObject({
  ...stepShape,
  /** GitHub's parallel step group; pipewright runs its steps one after another (a warning says so). */
  parallel: z.array(leafStepRaw, { error: 'expected a list of steps' }).optional(),
});

const outputsRaw = z.record(z.string(), z.string({ error: 'expected an expression string' }));

export const jobRaw = z.strictObject({
  name: z.string().optional(),
  needs: stringOrList.optional(),
  if: z.union([z.string(), z.boolean()], { error: 'expected an expression' }).optional(),
  'runs-on': runsOnRaw.optional(),
  container: containerRaw.optional(),
  strategy: strategyRaw.optional(),
  'timeout-minutes': minutes.optional(),
  'continue-on-error': boolOrExpr.optional(),
  outputs: outputsRaw.optional(),
  env: envMap.optional(),
  defaults: defaultsRaw.optional(),
  concurrency: concurrencyRaw.optional(),
  steps: z.array(stepRaw, { error: 'expected a list of steps' }).optional(),
  uses: z.string().optional(),
  // extensions
  timeout: durationString.optional(),
  retry: retryRaw.optional(),
  'kill-grace': killGrace.optional(),
  // GitHub keys pipewright accepts and ignores (warnings)
  permissions: z.unknown().optional(),
  environment: z.unknown().optional(),
  services: z.unknown().optional(),
  with: z.unknown().optional(),
  secrets: z.unknown().optional(),
  snapshot: z.unknown().optional(),
});

export const pipelineRaw = z.strictObject({
  name: z.string().optional(),
  'run-name': z.string().optional(),
  on: z.unknown().optional(),
  env: envMap.optional(),
  defaults: defaultsRaw.optional(),
  concurrency: concurrencyRaw.optional(),
  jobs: z
    .record(
      z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'job ids are letters, digits, `-` and `_`, starting with a letter or `_`'),
      jobRaw,
      { error: 'expected a mapping of job id to job' },
    )
    .refine((jobs) => Object.keys(jobs).length > 0, { error: 'expected at least one job' }),
  // extension
  timeout: durationString.optional(),
  permissions: z.unknown().optional(),
});

/** The pipeline as written, validated. */
export type PipelineRaw = z.infer<typeof pipelineRaw>;
/** One job as written, validated. */
export type JobRaw = z.infer<typeof jobRaw>;
/** One step as written, validated. */
export type StepRaw = z.infer<typeof stepRaw>;
/** The `retry:` extension as written. */
export type RetryRaw = z.infer<typeof retryRaw>;

/** Keys GitHub defines that pipewright accepts but ignores, by level. */
export const IGNORED_KEYS = {
  pipeline: ['permissions', 'run-name'],
  job: ['permissions', 'environment', 'services', 'snapshot'],
} as const;

/** Every key known at each level, for "did you mean" suggestions. */
export const KNOWN_KEYS = {
  pipeline: Object.keys(pipelineRaw.shape),
  job: Object.keys(jobRaw.shape),
  step: Object.keys(stepRaw.shape),
  retry: Object.keys(retryRaw.shape),
  strategy: Object.keys(strategyRaw.shape),
  backoff: ['delay', 'factor', 'max-delay', 'jitter'],
  defaults: ['run'],
  run: ['shell', 'working-directory'],
  container: ['image', 'env', 'options', 'volumes', 'ports', 'credentials', 'cpus', 'memory', 'network'],
  concurrency: ['group', 'cancel-in-progress'],
} as const;

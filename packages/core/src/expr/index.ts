// GitHub Actions `${{ }}` expressions: parsing, evaluation, `if:` conditions and templates.
export {
  type ExprContext,
  evaluateCondition,
  evaluateExpression,
  evaluateValue,
  hasStatusFunction,
  interpolate,
  isCleanupCondition,
  type StatusState,
} from './evaluate.js';
export { containsExpression } from './scan.js';
export { checkExpressionSyntax, type ExpressionSyntaxIssue, referencedSecrets } from './syntax.js';
export { isTruthy, toExpressionString } from './value.js';

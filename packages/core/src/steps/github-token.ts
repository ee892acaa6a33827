/**
 * The `github` context with `token` set to the `GITHUB_TOKEN` secret (any case), as GitHub
 * has it wherever secrets may be read; the context as it is when there is no such secret.
 */
export function withGithubToken(
  github: Record<string, unknown>,
  secrets: Readonly<Record<string, string>>,
): Record<string, unknown> {
  for (const k in secrets) if (k.toUpperCase() === 'GITHUB_TOKEN') return { ...github, token: secrets[k] };
  return github;
}

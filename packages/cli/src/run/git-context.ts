import { execFile } from 'node:child_process';
import { derivedRefFields } from '@pipewright/core';

/**
 * The `github` context fields a local run can know (`sha`, `ref`, `ref_name`, `ref_type`,
 * `repository`, `repository_owner`), so workflows that read `github.sha` or guard jobs with
 * `github.repository == 'org/repo'` behave as they would on a push: from the `GITHUB_*`
 * variables when the CLI itself runs in a GitHub Actions job, else from the git checkout in
 * `cwd` (the commit checked out, its branch, `origin`'s owner/name). Fields it cannot learn
 * are left out; it never fails the run.
 */
export async function localTrigger(cwd: string | undefined, env: NodeJS.ProcessEnv): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const [head, origin] = await Promise.all([
    env.GITHUB_SHA || cwd === undefined ? undefined : git(cwd, ['rev-parse', 'HEAD', '--symbolic-full-name', 'HEAD']),
    env.GITHUB_REPOSITORY || cwd === undefined ? undefined : git(cwd, ['config', '--get', 'remote.origin.url']),
  ]);
  const [sha, ref] = head?.split('\n') ?? [];
  const fullRef = env.GITHUB_REF || (ref?.startsWith('refs/') ? ref : undefined);
  const repository = env.GITHUB_REPOSITORY || repositoryOf(origin ?? '');
  if (env.GITHUB_SHA || sha) out.sha = (env.GITHUB_SHA || sha) as string;
  if (fullRef) out.ref = fullRef;
  if (repository) out.repository = repository;
  // ref_name, ref_type and repository_owner as the engine derives them for any trigger.
  return { ...out, ...derivedRefFields(out) };
}

/**
 * `owner/name` of a remote URL (`git@host:owner/name.git`, `https://host/owner/name`,
 * `ssh://git@host:22/owner/name`), or undefined for anything else (a local path, one path
 * segment). User names and passwords in the URL never reach the result.
 */
export function repositoryOf(url: string): string | undefined {
  const text = url.trim();
  let path: string;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    try {
      const u = new URL(text);
      if (u.protocol === 'file:') return undefined;
      path = decodeURIComponent(u.pathname);
    } catch {
      return undefined;
    }
  } else {
    // scp-like `[user@]host:path`; a path with a `/` before any `:` is a local path.
    const m = /^(?:[^@/\s]+@)?[^:/\s]+:(.+)$/.exec(text);
    if (!m) return undefined;
    path = m[1] as string;
  }
  const parts = path
    .replace(/\.git\/?$|\/$/, '')
    .split('/')
    .filter((p) => p !== '');
  if (parts.length < 2) return undefined;
  return `${parts[parts.length - 2]}/${parts[parts.length - 1]}`;
}

/** A git command's trimmed stdout, or undefined (no git, not a repository, slow). */
function git(cwd: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd, timeout: 3000, encoding: 'utf8' }, (err, stdout) =>
      resolve(err ? undefined : stdout.trim() || undefined),
    );
  });
}

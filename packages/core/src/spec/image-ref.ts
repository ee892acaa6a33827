// Docker image references, as `docker pull` takes them: [registry[:port]/]path[:tag][@digest].
// Checked before a name reaches the Docker API: names such as `x/` or `..` make dockerd answer
// with a redirect that the client library follows to a bogus host and fails outside any request
// handler, which crashes the process.
const DOMAIN = String.raw`(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?`;
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const TAG = String.raw`(?::[\w][\w.-]{0,127})?`;
const DIGEST = '(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?';
const REFERENCE = new RegExp(`^${DOMAIN}${COMPONENT}(?:/${COMPONENT})*${TAG}${DIGEST}$`);

/**
 * Why `image` is not a Docker image reference (`[registry/]name[:tag][@digest]`, lowercase
 * name), or undefined when it is one. A `docker://` prefix, as GitHub allows, is accepted.
 */
export function imageReferenceProblem(image: string): string | undefined {
  const ref = image.startsWith('docker://') ? image.slice('docker://'.length) : image;
  if (ref.length > 255 * 4) return 'it is too long';
  if (REFERENCE.test(ref) && !uppercaseFirstComponent(ref)) return undefined;
  return `\`${image}\` is not an image reference: use [registry/]name[:tag][@digest] with a lowercase name, e.g. \`debian:12\` or \`ghcr.io/org/app:1.2\``;
}

/**
 * `UPPER/x`: the first component names a registry only with a `.` or `:` in it or as
 * `localhost`; otherwise it is part of the repository name, which must be lowercase (Docker
 * refuses it, or takes `UPPER` for a registry host that does not exist).
 */
function uppercaseFirstComponent(ref: string): boolean {
  const slash = ref.indexOf('/');
  if (slash < 0) return false;
  const first = ref.slice(0, slash);
  return first !== first.toLowerCase() && !/[.:]/.test(first) && first !== 'localhost';
}

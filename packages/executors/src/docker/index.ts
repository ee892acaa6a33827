// Public API of the Docker executor.
export { createDockerClient, describeAddress, pingEngine } from './connection.js';
export { type ParsedContainerOptions, parseContainerOptions, parseMemory } from './container-options.js';
export { DOCKER_LABELS, DockerExecutor } from './executor.js';
export { ImageUnavailableError } from './images.js';
export type {
  DockerConnectionOptions,
  DockerExecutorOptions,
  DockerPullProgress,
  DockerRegistryAuth,
  ResolvedDockerExecutorOptions,
} from './options.js';
export { engineIdOf, resolveDockerOptions } from './options.js';
export { DockerWorkspace, type DockerWorkspaceInit } from './workspace.js';

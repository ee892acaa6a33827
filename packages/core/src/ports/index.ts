export type * from './executor.js';
export type * from './logs.js';
export type * from './secrets.js';
export type * from './state.js';

export * from './access.js';
export * from './ids.js';
export * from './status.js';
export * from './types.js';

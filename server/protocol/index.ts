export * from './errors';
export * from './names';
export * from './messages';
export * from './line-decoder';
export * from './records';
export * from './auth';
export * from './listing';
export * from './preconditions';

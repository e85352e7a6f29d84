export * from './encoding';
export * from './phone';
export * from './pricing';
export { numberTimezone, nanpAreaCodeTimezone } from './timezone';

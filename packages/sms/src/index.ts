export * from './encoding';
export * from './phone';
export * from './pricing';
export { countryTimezone, numberTimezone, nanpAreaCodeTimezone } from './timezone';

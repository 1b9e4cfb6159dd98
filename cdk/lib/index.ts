export { GenesysVirtualAgentAnalytics } from './construct';
export {
  GenesysVirtualAgentAnalyticsProps, ResolvedProps, GenesysRegion, Tenancy, DeliveryMode, FunctionTracing,
  RefreshPeriodMinutes, LogRetentionDays, GENESYS_REGIONS, DEFAULTS, REFRESH_PERIODS, resolveProps,
} from './props';
export { Conditions } from './conditions';
export { VERSION } from './outputs';
export { EXAMPLE_PROPS, STACK_NAME, createApp, propsFromContext } from './app';

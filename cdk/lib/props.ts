import * as path from 'node:path';

/**
 * What infra/template.yaml's parameters choose, one prop per parameter
 * (camelCase of its name), with the same defaults and the same allowed
 * values. Validated at construct time by {@link resolveProps}: a SAM
 * parameter is checked by CloudFormation, a prop here by the construct.
 */
export interface GenesysVirtualAgentAnalyticsProps {
  /** GenesysRegion: Genesys Cloud region (AWS-style name) of the org. @default 'us-east-1' */
  readonly genesysRegion?: GenesysRegion;
  /** Tenancy: one org (SingleOrg) or the tenant table's orgs (MultiOrg). @default 'SingleOrg' */
  readonly tenancy?: Tenancy;
  /** GenesysSecretArn: SingleOrg only (and required there), the OAuth client's secret. @default '' */
  readonly genesysSecretArn?: string;
  /** GenesysSecretKeyArn: optional customer managed key of the OAuth secrets. @default '' */
  readonly genesysSecretKeyArn?: string;
  /** GenesysEventSourceName: SingleOrg only (and required there), the partner event source/bus. @default '' */
  readonly genesysEventSourceName?: string;
  /** TokenPoolSize: 1 to 32. @default 1 */
  readonly tokenPoolSize?: number;
  /** TokenRefreshMarginSeconds: 0 to 86400 (0 picks it from the token's lifetime). @default 0 */
  readonly tokenRefreshMarginSeconds?: number;
  /** TokenLeaseSeconds: 10 to 60. @default 30 */
  readonly tokenLeaseSeconds?: number;
  /** RefreshPeriodMinutes: 1, 2 or 5. @default 1 */
  readonly refreshPeriodMinutes?: RefreshPeriodMinutes;
  /** DeliveryMode: PerEvent or Batch. @default 'PerEvent' */
  readonly deliveryMode?: DeliveryMode;
  /** EnrichmentDelaySeconds: 0 to 3600. @default 120 */
  readonly enrichmentDelaySeconds?: number;
  /** EnrichmentGiveUpHours: 1 to 240. @default 24 */
  readonly enrichmentGiveUpHours?: number;
  /** LogRetentionDays: 7, 14, 30, 60, 90, 180 or 365. @default 30 */
  readonly logRetentionDays?: LogRetentionDays;
  /** AlarmTopicArn: optional SNS topic for every alarm. @default '' */
  readonly alarmTopicArn?: string;
  /** EventsReservedConcurrency: 0 to 10000 (0 reserves none). @default 0 */
  readonly eventsReservedConcurrency?: number;
  /** DashboardReservedConcurrency: 0 to 1000 (0 reserves none). @default 0 */
  readonly dashboardReservedConcurrency?: number;
  /** DashboardRequestsPerSecond: 1 to 10000 (HTTP API throttle). @default 200 */
  readonly dashboardRequestsPerSecond?: number;
  /** DashboardBurstRequests: 1 to 5000 (HTTP API throttle). @default 400 */
  readonly dashboardBurstRequests?: number;
  /** FunctionTracing: Active or PassThrough (X-Ray). @default 'Active' */
  readonly functionTracing?: FunctionTracing;
  /** PerOrgMetrics: the Org metric dimension. @default true */
  readonly perOrgMetrics?: boolean;
  /** MinuteCellRetentionDays: 32 to 3660. @default 35 */
  readonly minuteCellRetentionDays?: number;
  /** HourCellRetentionDays: 32 to 3660. @default 400 */
  readonly hourCellRetentionDays?: number;
  /** RefresherReservedConcurrency: 0 to 2 (0 reserves none). @default 0 */
  readonly refresherReservedConcurrency?: number;
  /** SweeperReservedConcurrency: 0 or 1 (0 reserves none). @default 0 */
  readonly sweeperReservedConcurrency?: number;
  /** BatchMaximumConcurrency: 2 to 1000, the batch queue's mapping's cap. @default 5 */
  readonly batchMaximumConcurrency?: number;
  /**
   * The Cargo workspace the four functions build from: its root directory
   * or its Cargo.toml (SAM's `CodeUri: ..`). Not a SAM parameter.
   * @default the repository this cdk/ folder sits in
   */
  readonly cargoManifestPath?: string;
}

export const GENESYS_REGIONS = [
  'us-east-1', 'us-east-2', 'us-west-2', 'ca-central-1', 'sa-east-1', 'mx-central-1',
  'eu-west-1', 'eu-west-2', 'eu-central-1', 'eu-central-2', 'eusc-de-east-1', 'me-central-1',
  'ap-south-1', 'ap-northeast-1', 'ap-northeast-2', 'ap-northeast-3', 'ap-southeast-1', 'ap-southeast-2',
] as const;
export type GenesysRegion = (typeof GENESYS_REGIONS)[number];
export type Tenancy = 'SingleOrg' | 'MultiOrg';
export type DeliveryMode = 'PerEvent' | 'Batch';
export type FunctionTracing = 'Active' | 'PassThrough';
export type RefreshPeriodMinutes = 1 | 2 | 5;
export type LogRetentionDays = 7 | 14 | 30 | 60 | 90 | 180 | 365;

/** The props with every default filled in, after validation. */
export type ResolvedProps = Required<GenesysVirtualAgentAnalyticsProps>;

/** The template's `RefreshPeriods` mapping. */
export const REFRESH_PERIODS: Record<RefreshPeriodMinutes, { schedule: string; seconds: number; expiryAlarmSeconds: number }> = {
  1: { schedule: 'rate(1 minute)', seconds: 60, expiryAlarmSeconds: 150 },
  2: { schedule: 'rate(2 minutes)', seconds: 120, expiryAlarmSeconds: 270 },
  5: { schedule: 'rate(5 minutes)', seconds: 300, expiryAlarmSeconds: 630 },
};

/** The template's parameter defaults. */
export const DEFAULTS: ResolvedProps = {
  genesysRegion: 'us-east-1',
  tenancy: 'SingleOrg',
  genesysSecretArn: '',
  genesysSecretKeyArn: '',
  genesysEventSourceName: '',
  tokenPoolSize: 1,
  tokenRefreshMarginSeconds: 0,
  tokenLeaseSeconds: 30,
  refreshPeriodMinutes: 1,
  deliveryMode: 'PerEvent',
  enrichmentDelaySeconds: 120,
  enrichmentGiveUpHours: 24,
  logRetentionDays: 30,
  alarmTopicArn: '',
  eventsReservedConcurrency: 0,
  dashboardReservedConcurrency: 0,
  dashboardRequestsPerSecond: 200,
  dashboardBurstRequests: 400,
  functionTracing: 'Active',
  perOrgMetrics: true,
  minuteCellRetentionDays: 35,
  hourCellRetentionDays: 400,
  refresherReservedConcurrency: 0,
  sweeperReservedConcurrency: 0,
  batchMaximumConcurrency: 5,
  // cdk/lib/ -> the repository root, whose Cargo.toml is the workspace.
  cargoManifestPath: path.resolve(__dirname, '..', '..', 'Cargo.toml'),
};

/** Number parameters: [min, max] (MinValue, MaxValue). */
const RANGES: Partial<Record<keyof ResolvedProps, [number, number]>> = {
  tokenPoolSize: [1, 32],
  tokenRefreshMarginSeconds: [0, 86400],
  tokenLeaseSeconds: [10, 60],
  enrichmentDelaySeconds: [0, 3600],
  enrichmentGiveUpHours: [1, 240],
  eventsReservedConcurrency: [0, 10000],
  dashboardReservedConcurrency: [0, 1000],
  dashboardRequestsPerSecond: [1, 10000],
  dashboardBurstRequests: [1, 5000],
  minuteCellRetentionDays: [32, 3660],
  hourCellRetentionDays: [32, 3660],
  refresherReservedConcurrency: [0, 2],
  sweeperReservedConcurrency: [0, 1],
  batchMaximumConcurrency: [2, 1000],
};

/** String and Number parameters with AllowedValues. */
const ALLOWED: Partial<Record<keyof ResolvedProps, readonly unknown[]>> = {
  genesysRegion: GENESYS_REGIONS,
  tenancy: ['SingleOrg', 'MultiOrg'],
  refreshPeriodMinutes: [1, 2, 5],
  deliveryMode: ['PerEvent', 'Batch'],
  logRetentionDays: [7, 14, 30, 60, 90, 180, 365],
  functionTracing: ['Active', 'PassThrough'],
  perOrgMetrics: [true, false],
};

/** String parameters with AllowedPattern (each allows the empty string). */
const PATTERNS: Partial<Record<keyof ResolvedProps, RegExp>> = {
  genesysSecretArn: /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+)?$/,
  genesysSecretKeyArn: /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key\/[0-9a-f-]+)?$/,
  genesysEventSourceName: /^(aws\.partner\/genesys\.com\/.+)?$/,
};

/**
 * Fills in the defaults and checks every prop as CloudFormation checks the
 * parameter (and the template's `Rules`); throws an Error naming the prop.
 */
export function resolveProps(props: GenesysVirtualAgentAnalyticsProps = {}): ResolvedProps {
  const given = Object.fromEntries(Object.entries(props).filter(([, v]) => v !== undefined));
  const p = { ...DEFAULTS, ...given } as ResolvedProps;
  for (const key of Object.keys(given)) {
    if (!(key in DEFAULTS)) throw new Error(`GenesysVirtualAgentAnalytics: unknown prop '${key}'`);
  }
  for (const [key, [min, max]] of Object.entries(RANGES) as [keyof ResolvedProps, [number, number]][]) {
    const v = p[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new Error(`GenesysVirtualAgentAnalytics: '${key}' must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
  }
  for (const [key, allowed] of Object.entries(ALLOWED) as [keyof ResolvedProps, readonly unknown[]][]) {
    if (!allowed.includes(p[key])) {
      throw new Error(`GenesysVirtualAgentAnalytics: '${key}' must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(p[key])}`);
    }
  }
  for (const [key, pattern] of Object.entries(PATTERNS) as [keyof ResolvedProps, RegExp][]) {
    const v = p[key];
    if (typeof v !== 'string' || !pattern.test(v)) {
      throw new Error(`GenesysVirtualAgentAnalytics: '${key}' must match ${pattern}, got ${JSON.stringify(v)}`);
    }
  }
  if (typeof p.alarmTopicArn !== 'string') {
    throw new Error(`GenesysVirtualAgentAnalytics: 'alarmTopicArn' must be a string, got ${JSON.stringify(p.alarmTopicArn)}`);
  }
  if (typeof p.cargoManifestPath !== 'string' || p.cargoManifestPath === '') {
    throw new Error(`GenesysVirtualAgentAnalytics: 'cargoManifestPath' must be a path, got ${JSON.stringify(p.cargoManifestPath)}`);
  }
  // The template's Rules: SingleOrgNamesItsOrg.
  if (p.tenancy === 'SingleOrg') {
    if (p.genesysSecretArn === '') throw new Error("GenesysVirtualAgentAnalytics: 'genesysSecretArn' is required: SingleOrg needs GenesysSecretArn.");
    if (p.genesysEventSourceName === '') throw new Error("GenesysVirtualAgentAnalytics: 'genesysEventSourceName' is required: SingleOrg needs GenesysEventSourceName.");
  }
  return p;
}

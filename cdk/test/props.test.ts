import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS, resolveProps } from '../lib';
import { SINGLE_ORG, synth } from './helpers';

test('defaults are the SAM template parameters\' defaults', () => {
  const p = resolveProps(SINGLE_ORG);
  assert.equal(p.genesysRegion, 'us-east-1');
  assert.equal(p.tenancy, 'SingleOrg');
  assert.equal(p.tokenPoolSize, 1);
  assert.equal(p.tokenRefreshMarginSeconds, 0);
  assert.equal(p.tokenLeaseSeconds, 30);
  assert.equal(p.refreshPeriodMinutes, 1);
  assert.equal(p.deliveryMode, 'PerEvent');
  assert.equal(p.enrichmentDelaySeconds, 120);
  assert.equal(p.enrichmentGiveUpHours, 24);
  assert.equal(p.logRetentionDays, 30);
  assert.equal(p.alarmTopicArn, '');
  assert.equal(p.dashboardRequestsPerSecond, 200);
  assert.equal(p.dashboardBurstRequests, 400);
  assert.equal(p.functionTracing, 'Active');
  assert.equal(p.perOrgMetrics, true);
  assert.equal(p.minuteCellRetentionDays, 35);
  assert.equal(p.hourCellRetentionDays, 400);
  assert.equal(p.batchMaximumConcurrency, 5);
  for (const k of ['eventsReservedConcurrency', 'dashboardReservedConcurrency', 'refresherReservedConcurrency', 'sweeperReservedConcurrency'] as const) {
    assert.equal(p[k], 0);
  }
  assert.match(DEFAULTS.cargoManifestPath, /Cargo\.toml$/);
});

test('the template\'s Rules: SingleOrg names its secret and its event source', () => {
  assert.throws(() => resolveProps({}), /'genesysSecretArn' is required: SingleOrg needs GenesysSecretArn/);
  assert.throws(() => resolveProps({ genesysSecretArn: SINGLE_ORG.genesysSecretArn }), /'genesysEventSourceName' is required/);
  assert.doesNotThrow(() => resolveProps({ tenancy: 'MultiOrg' }));
  assert.throws(() => synth({}), /genesysSecretArn/);
});

test('ranges, allowed values and patterns are checked, naming the prop', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ tokenPoolSize: 0 }, /'tokenPoolSize' must be an integer from 1 to 32/],
    [{ tokenPoolSize: 33 }, /'tokenPoolSize'/],
    [{ tokenPoolSize: 1.5 }, /'tokenPoolSize'/],
    [{ tokenRefreshMarginSeconds: 86401 }, /'tokenRefreshMarginSeconds'/],
    [{ tokenLeaseSeconds: 9 }, /'tokenLeaseSeconds' must be an integer from 10 to 60/],
    [{ tokenLeaseSeconds: 61 }, /'tokenLeaseSeconds'/],
    [{ enrichmentDelaySeconds: 3601 }, /'enrichmentDelaySeconds'/],
    [{ enrichmentGiveUpHours: 0 }, /'enrichmentGiveUpHours'/],
    [{ eventsReservedConcurrency: 10001 }, /'eventsReservedConcurrency'/],
    [{ dashboardReservedConcurrency: 1001 }, /'dashboardReservedConcurrency'/],
    [{ dashboardRequestsPerSecond: 0 }, /'dashboardRequestsPerSecond'/],
    [{ dashboardBurstRequests: 5001 }, /'dashboardBurstRequests'/],
    [{ minuteCellRetentionDays: 31 }, /'minuteCellRetentionDays' must be an integer from 32 to 3660/],
    [{ hourCellRetentionDays: 3661 }, /'hourCellRetentionDays'/],
    [{ refresherReservedConcurrency: 3 }, /'refresherReservedConcurrency'/],
    [{ sweeperReservedConcurrency: 2 }, /'sweeperReservedConcurrency'/],
    [{ batchMaximumConcurrency: 1 }, /'batchMaximumConcurrency'/],
    [{ refreshPeriodMinutes: 3 }, /'refreshPeriodMinutes' must be one of 1, 2, 5/],
    [{ logRetentionDays: 31 }, /'logRetentionDays'/],
    [{ genesysRegion: 'eu-north-1' }, /'genesysRegion'/],
    [{ tenancy: 'Both' }, /'tenancy'/],
    [{ deliveryMode: 'Stream' }, /'deliveryMode'/],
    [{ functionTracing: 'Disabled' }, /'functionTracing'/],
    [{ perOrgMetrics: 'true' }, /'perOrgMetrics'/],
    [{ genesysSecretArn: 'genesys/va-analytics' }, /'genesysSecretArn' must match/],
    [{ genesysSecretKeyArn: 'alias/aws/secretsmanager' }, /'genesysSecretKeyArn' must match/],
    [{ genesysEventSourceName: 'aws.partner/other.com/x' }, /'genesysEventSourceName' must match/],
    [{ tokenPoolsize: 2 }, /unknown prop 'tokenPoolsize'/],
  ];
  for (const [override, message] of bad) {
    assert.throws(() => resolveProps({ ...SINGLE_ORG, ...override } as any), message, JSON.stringify(override));
  }
  assert.doesNotThrow(() => resolveProps({ ...SINGLE_ORG, genesysSecretKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' }));
});

test('props become the functions\' environment as the Globals write it', () => {
  const { byId } = synth({ ...SINGLE_ORG, tokenPoolSize: 4, refreshPeriodMinutes: 5, perOrgMetrics: false, genesysRegion: 'eu-west-1' });
  const env = byId.TokenRefresherFunction.Properties.Environment.Variables;
  assert.equal(env.TOKEN_POOL_SIZE, '4');
  assert.equal(env.TOKEN_REFRESHER_PERIOD_SECONDS, '300');
  assert.equal(env.PER_ORG_METRICS, 'false');
  assert.equal(env.GENESYS_REGION, 'eu-west-1');
  assert.equal(env.GENESYS_SECRET_ID, SINGLE_ORG.genesysSecretArn);
  assert.equal(env.TENANTS_TABLE, undefined);
  assert.equal(byId.TokenRefresherFunctionTick.Properties.ScheduleExpression, 'rate(5 minutes)');
});

test('reserved concurrency only when asked (0 reserves none)', () => {
  const none = synth().byId;
  for (const f of ['TokenRefresherFunction', 'ConversationEventsFunction', 'EnrichmentSweeperFunction', 'DashboardApiFunction']) {
    assert.equal(none[f].Properties.ReservedConcurrentExecutions, undefined, f);
  }
  const some = synth({ ...SINGLE_ORG, eventsReservedConcurrency: 100, dashboardReservedConcurrency: 10, refresherReservedConcurrency: 2, sweeperReservedConcurrency: 1 }).byId;
  assert.equal(some.ConversationEventsFunction.Properties.ReservedConcurrentExecutions, 100);
  assert.equal(some.DashboardApiFunction.Properties.ReservedConcurrentExecutions, 10);
  assert.equal(some.TokenRefresherFunction.Properties.ReservedConcurrentExecutions, 2);
  assert.equal(some.EnrichmentSweeperFunction.Properties.ReservedConcurrentExecutions, 1);
});

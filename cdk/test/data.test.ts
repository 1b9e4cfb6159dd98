import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODES, MULTI_ORG, SINGLE_ORG, synth } from './helpers';

const ref = (s: ReturnType<typeof synth>, id: string) => ({ Ref: s.logicalId(id) });

test('each table is encrypted with its own customer managed key, on demand', () => {
  const s = synth({ ...MULTI_ORG, deliveryMode: 'Batch' });
  for (const [table, key] of [['TokenTable', 'TokenKey'], ['AnalyticsTable', 'DataKey'], ['TenantTable', 'DataKey']]) {
    const p = s.byId[table].Properties;
    assert.deepEqual(p.SSESpecification, { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: ref(s, key) }, table);
    assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
  }
});

test('each queue is encrypted with the queue key', () => {
  const s = synth({ ...SINGLE_ORG, deliveryMode: 'Batch' });
  for (const q of ['DeadLetterQueue', 'EventQueue']) {
    assert.deepEqual(s.byId[q].Properties.KmsMasterKeyId, ref(s, 'QueueKey'), q);
  }
  assert.deepEqual(s.byId.EventQueue.Properties.RedrivePolicy, { deadLetterTargetArn: { 'Fn::GetAtt': [s.logicalId('DeadLetterQueue'), 'Arn'] }, maxReceiveCount: 5 });
});

test('three keys, each rotated; keys, the analytics table, the registry and the dead letters outlive the stack', () => {
  const s = synth({ ...MULTI_ORG });
  s.template.resourceCountIs('AWS::KMS::Key', 3);
  for (const key of ['DataKey', 'TokenKey', 'QueueKey']) assert.equal(s.byId[key].Properties.EnableKeyRotation, true, key);
  for (const id of ['DataKey', 'TokenKey', 'QueueKey', 'AnalyticsTable', 'TenantTable', 'DeadLetterQueue']) {
    assert.equal(s.byId[id].DeletionPolicy, 'Retain', id);
    assert.equal(s.byId[id].UpdateReplacePolicy, 'Retain', id);
  }
  assert.equal(s.byId.TokenTable.DeletionPolicy, undefined);
});

test('the queue key admits only this stack\'s rules and, through SQS, this stack\'s two queues', () => {
  for (const [mode, props] of MODES) {
    const s = synth(props);
    const [admin, events, roles] = s.byId.QueueKey.Properties.KeyPolicy.Statement;
    assert.equal(admin.Sid, 'AccountAdministersOnly');
    assert.ok(!admin.Action.includes('kms:Decrypt') && !admin.Action.includes('kms:*'), mode);
    assert.equal(events.Sid, 'GenesysRulesSendToQueues');
    const source = JSON.stringify(events.Condition.ArnLike['aws:SourceArn']);
    assert.ok(mode.startsWith('Multi') ? source.includes('rule/aws.partner/genesys.com/cloud/*/') : source.includes(`rule/${SINGLE_ORG.genesysEventSourceName}/`), mode);
    assert.equal(roles.Sid, 'RolesOfThisAccountUseItForThisStacksQueuesOnly');
    const arns = JSON.stringify(roles.Condition['ForAnyValue:StringEquals']['kms:EncryptionContext:aws:sqs:arn']);
    assert.ok(arns.includes('-dead-letters') && arns.includes('-events'), mode);
  }
});

test('TTL on the token and analytics tables; point-in-time recovery on the analytics table and the registry only', () => {
  const s = synth(MULTI_ORG);
  for (const t of ['TokenTable', 'AnalyticsTable']) assert.deepEqual(s.byId[t].Properties.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true }, t);
  assert.equal(s.byId.TenantTable.Properties.TimeToLiveSpecification, undefined);
  assert.equal(s.byId.TokenTable.Properties.PointInTimeRecoverySpecification, undefined);
  for (const t of ['AnalyticsTable', 'TenantTable']) assert.deepEqual(s.byId[t].Properties.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true }, t);
  assert.deepEqual(s.byId.AnalyticsTable.Properties.GlobalSecondaryIndexes, [{ IndexName: 'OrgItems', KeySchema: [{ AttributeName: 'org_shard', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } }]);
});

test('log groups: one per function named for it, and the access logs, all with LogRetentionDays', () => {
  for (const days of [7, 30, 365] as const) {
    const s = synth({ ...SINGLE_ORG, logRetentionDays: days });
    s.template.resourceCountIs('AWS::Logs::LogGroup', 5);
    for (const [logs, fn] of [['TokenRefresherLogs', 'TokenRefresherFunction'], ['ConversationEventsLogs', 'ConversationEventsFunction'],
      ['EnrichmentSweeperLogs', 'EnrichmentSweeperFunction'], ['DashboardApiLogs', 'DashboardApiFunction']]) {
      assert.equal(s.byId[logs].Properties.RetentionInDays, days, logs);
      assert.deepEqual(s.byId[logs].Properties.LogGroupName, { 'Fn::Join': ['', ['/aws/lambda/', { Ref: s.logicalId(fn) }]] }, logs);
    }
    assert.equal(s.byId.DashboardAccessLogs.Properties.RetentionInDays, days);
  }
});

test('queue retention: 14 days of dead letters, 4 days of batch events; cell retention reaches the writers', () => {
  const s = synth({ ...SINGLE_ORG, deliveryMode: 'Batch', minuteCellRetentionDays: 40, hourCellRetentionDays: 500 });
  assert.equal(s.byId.DeadLetterQueue.Properties.MessageRetentionPeriod, 1209600);
  assert.equal(s.byId.EventQueue.Properties.MessageRetentionPeriod, 345600);
  assert.equal(s.byId.EventQueue.Properties.VisibilityTimeout, 180);
  for (const fn of ['ConversationEventsFunction', 'EnrichmentSweeperFunction']) {
    const env = s.byId[fn].Properties.Environment.Variables;
    assert.equal(env.MINUTE_CELL_RETENTION_DAYS, '40', fn);
    assert.equal(env.HOUR_CELL_RETENTION_DAYS, '500', fn);
  }
});

test('a failed invocation has one path to the dead-letter queue', () => {
  const s = synth();
  const cfg = s.byId.ConversationEventsFunctionEventInvokeConfig.Properties;
  assert.deepEqual(cfg.DestinationConfig, { OnFailure: { Destination: { 'Fn::GetAtt': [s.logicalId('DeadLetterQueue'), 'Arn'] } } });
  assert.equal(cfg.MaximumRetryAttempts, 2);
  assert.equal(cfg.Qualifier, '$LATEST');
  assert.equal(s.byId.ConversationEventsFunction.Properties.DeadLetterConfig, undefined);
  const target = s.byId.PerEventRule.Properties.Targets[0];
  assert.deepEqual(target.DeadLetterConfig, { Arn: { 'Fn::GetAtt': [s.logicalId('DeadLetterQueue'), 'Arn'] } });
  assert.deepEqual(target.RetryPolicy, { MaximumRetryAttempts: 185, MaximumEventAgeInSeconds: 86400 });
});

test('batch delivery reports item failures, capped by BatchMaximumConcurrency', () => {
  const s = synth({ ...SINGLE_ORG, deliveryMode: 'Batch', batchMaximumConcurrency: 7 });
  const m = s.byId.BatchEventSource.Properties;
  assert.deepEqual(m.FunctionResponseTypes, ['ReportBatchItemFailures']);
  assert.equal(m.BatchSize, 100);
  assert.deepEqual(m.ScalingConfig, { MaximumConcurrency: 7 });
});

test('the dashboard: only the page and the sign-in route are public; throttle and user pool as the template', () => {
  const s = synth({ ...SINGLE_ORG, dashboardRequestsPerSecond: 150, dashboardBurstRequests: 300 });
  const body = s.byId.DashboardHttpApi.Properties.Body;
  const open: string[] = [];
  for (const [path, methods] of Object.entries<any>(body.paths)) {
    for (const [method, op] of Object.entries<any>(methods)) if (!op.security) open.push(`${method.toUpperCase()} ${path}`);
  }
  assert.deepEqual(open.sort(), ['GET /', 'GET /api/sign-in']);
  assert.equal(body.components.securitySchemes.CognitoViewers['x-amazon-apigateway-authorizer'].type, 'jwt');
  const stage = s.byId.DashboardHttpApiApiGatewayDefaultStage.Properties;
  assert.deepEqual(stage.DefaultRouteSettings, { ThrottlingBurstLimit: 300, ThrottlingRateLimit: 150 });
  assert.equal(stage.StageName, '$default');
  const pool = s.byId.DashboardUserPool.Properties;
  assert.deepEqual(pool.AdminCreateUserConfig, { AllowAdminCreateUserOnly: true });
  assert.equal(pool.Policies.PasswordPolicy.MinimumLength, 12);
  assert.equal(s.byId.DashboardUserPoolClient.Properties.GenerateSecret, false);
  for (const e of ['Page', 'SignIn', 'Data', 'LiveData', 'Orgs']) assert.equal(s.byId[`DashboardApiFunction${e}Permission`].Properties.Principal, 'apigateway.amazonaws.com');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODES, MULTI_ORG, SECRET_KEY, SINGLE_ORG, Synth, inlinePolicy, sids, synth } from './helpers';

const FUNCTIONS = ['TokenRefresherFunction', 'ConversationEventsFunction', 'EnrichmentSweeperFunction', 'DashboardApiFunction'];

interface Flat { fn: string; sid: string; actions: string[]; resource: string; condition: any }

/** Every statement of the four roles, its Resource named by construct id (`TokenTable.Arn`). */
function statements(s: Synth): Flat[] {
  const idOf = Object.fromEntries(Object.keys(s.byId).map((id) => [s.logicalId(id), id]));
  const name = (r: any): string => {
    if (typeof r === 'string') return r;
    if (r['Fn::GetAtt']) return `${idOf[r['Fn::GetAtt'][0]]}.${r['Fn::GetAtt'][1]}`;
    if (r['Fn::Join']) return r['Fn::Join'][1].map(name).join('');
    if (r.Ref) return r.Ref.startsWith('AWS::') ? `\${${r.Ref}}` : idOf[r.Ref];
    return JSON.stringify(r);
  };
  const names = (v: any): any => (Array.isArray(v) ? v.map(names)
    : typeof v === 'object' && v !== null && !v['Fn::Join'] && !v['Fn::GetAtt'] && !v.Ref ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, names(x)]))
      : name(v));
  const out: Flat[] = [];
  for (const fn of FUNCTIONS) {
    for (const p of s.byId[`${fn}Role`].Properties.Policies) {
      for (const st of p.PolicyDocument.Statement) {
        assert.equal(st.Effect, 'Allow');
        out.push({ fn, sid: st.Sid, actions: [st.Action].flat(), resource: name(st.Resource), condition: names(st.Condition ?? {}) });
      }
    }
  }
  return out;
}

/** The statements SAM's transform gives each role, by mode (infra/template.yaml's Policies). */
function expectedSids(multi: boolean, batch: boolean, secretKey: boolean): Record<string, string[]> {
  const m = (cond: boolean, ...s: string[]) => (cond ? s : []);
  return {
    TokenRefresherFunction: ['TokenItems', 'OAuthClientSecret', ...m(secretKey, 'OAuthClientSecretKey'), 'TokenTableKey', ...m(multi, 'TenantsList', 'TenantTableKey')],
    ConversationEventsFunction: [
      '"sqs:SendMessage"', // ConversationEventsFunctionEventInvokeConfigOnFailureSQSPolicy (no Sid)
      'AnalyticsWrites', 'LateWriteMarks', 'LayoutRead', 'ConversationStateRead', ...m(multi, 'TenantRead'),
      'AnalyticsTableKey', 'FailedAndRejectedEvents', 'QueueKey', ...m(batch, 'BatchQueue', 'BatchQueueKey'),
    ],
    EnrichmentSweeperFunction: [
      'TokenItemsReadMarkStaleAcquire', 'PendingSessions', 'LateEnrichmentMarks', 'RollUpReads', 'SweepLease', 'LayoutRead', 'EnrichmentWrites',
      ...m(multi, 'TenantsList'), 'OAuthClientSecretForSingleFlightRecovery', ...m(secretKey, 'OAuthClientSecretKey'), 'AnalyticsTableKey', 'TokenTableKey',
    ],
    DashboardApiFunction: [
      'AggregatesRead', ...m(multi, 'AssumeOneOrgReader', 'TenantRead', 'TenantList'), 'LayoutRead', 'TokenHealthRead', 'AnalyticsTableKey', 'TokenTableKeyForHealthReads',
    ],
  };
}

test('each role has exactly the statements, managed policies and trust SAM\'s transform gives it', () => {
  for (const secretKey of [false, true]) {
    for (const [mode, props] of MODES) {
      const s = synth({ ...props, genesysSecretKeyArn: secretKey ? SECRET_KEY : '' });
      const expected = expectedSids(mode.startsWith('Multi'), mode.endsWith('Batch'), secretKey);
      for (const fn of FUNCTIONS) {
        const role = s.byId[`${fn}Role`];
        const names = role.Properties.Policies.map((p: any) => p.PolicyName);
        assert.deepEqual(names, fn === 'ConversationEventsFunction'
          ? ['ConversationEventsFunctionEventInvokeConfigOnFailureSQSPolicy', 'ConversationEventsFunctionRolePolicy0']
          : [`${fn}RolePolicy0`], `${mode} ${fn}`);
        const all = role.Properties.Policies.flatMap((p: any) => sids(p.PolicyDocument));
        assert.deepEqual(all, expected[fn], `${mode} secretKey=${secretKey} ${fn}`);
        assert.deepEqual(role.Properties.AssumeRolePolicyDocument, {
          Version: '2012-10-17',
          Statement: [{ Action: ['sts:AssumeRole'], Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] } }],
        });
        const managed = role.Properties.ManagedPolicyArns.map((a: any) => a['Fn::Join'][1].join('').replace(/\{"Ref":"AWS::Partition"\}|\[object Object\]/, 'P'));
        assert.deepEqual(managed, ['arn:P:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole', 'arn:P:iam::aws:policy/AWSXrayWriteOnlyAccess']);
        // The function runs with its own role and nothing else grants it.
        assert.deepEqual(s.byId[fn].Properties.Role, { 'Fn::GetAtt': [s.logicalId(`${fn}Role`), 'Arn'] });
      }
      // No CDK-made policy (grants, tracing) anywhere.
      s.template.resourceCountIs('AWS::IAM::Policy', 0);
    }
  }
});

test('no wildcard actions (but DynamoDB\'s GenerateDataKey*) and no "*" resource in function roles', () => {
  for (const [mode, props] of MODES) {
    for (const st of statements(synth({ ...props, genesysSecretKeyArn: SECRET_KEY }))) {
      for (const a of st.actions) {
        assert.ok(!a.includes('*') || a === 'kms:GenerateDataKey*', `${mode} ${st.fn} ${st.sid}: ${a}`);
      }
      assert.notEqual(st.resource, '*', `${mode} ${st.fn} ${st.sid}`);
    }
  }
});

test('every DynamoDB statement is scoped by leading keys (tenant scans only where SAM lists them)', () => {
  for (const [mode, props] of MODES) {
    for (const st of statements(synth(props)).filter((x) => x.actions.some((a) => a.startsWith('dynamodb:')))) {
      if (st.resource === 'TenantTable.Arn' && st.actions.includes('dynamodb:Scan')) {
        assert.deepEqual(st.actions, ['dynamodb:Scan']);
        const fieldsOnly = st.condition['ForAllValues:StringEquals']?.['dynamodb:Attributes'] && st.condition.StringEquals?.['dynamodb:Select'] === 'SPECIFIC_ATTRIBUTES';
        assert.ok(['TokenRefresherFunction', 'EnrichmentSweeperFunction'].includes(st.fn) || (st.fn === 'DashboardApiFunction' && fieldsOnly), `${mode} ${st.fn}`);
        continue;
      }
      const keys = st.condition['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'];
      assert.ok(Array.isArray(keys) && keys.length > 0, `${mode} ${st.fn} ${st.sid}`);
      if (st.resource === 'TokenTable.Arn') assert.deepEqual(keys, ['token#*']);
      if (st.resource === 'TenantTable.Arn') assert.deepEqual(keys, ['tenant#*']);
    }
  }
});

test('token items: get and update only; the dashboard reads health attributes only', () => {
  for (const st of statements(synth()).filter((x) => x.resource === 'TokenTable.Arn')) {
    for (const a of st.actions) assert.ok(['dynamodb:GetItem', 'dynamodb:UpdateItem'].includes(a), `${st.fn} ${a}`);
    if (st.fn === 'DashboardApiFunction') {
      assert.deepEqual(st.actions, ['dynamodb:GetItem']);
      const attrs: string[] = st.condition['ForAllValues:StringEquals']['dynamodb:Attributes'];
      for (const secret of ['access_token', 'last_error', 'lease_owner']) assert.ok(!attrs.includes(secret), secret);
      assert.deepEqual(st.condition.StringEqualsIfExists, { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' });
    }
  }
});

test('only the refresher and the sweeper read the secret: the one secret, or <stack>/org/*', () => {
  const single = statements(synth()).filter((x) => x.actions.some((a) => a.startsWith('secretsmanager:')));
  assert.deepEqual(single.map((x) => x.fn), ['TokenRefresherFunction', 'EnrichmentSweeperFunction']);
  for (const st of single) {
    assert.deepEqual(st.actions, ['secretsmanager:GetSecretValue']);
    assert.equal(st.resource, SINGLE_ORG.genesysSecretArn);
  }
  for (const st of statements(synth(MULTI_ORG)).filter((x) => x.actions.some((a) => a.startsWith('secretsmanager:')))) {
    assert.match(st.resource, /:secret:\$\{AWS::StackName\}\/org\/\*$/);
  }
});

test('the event handler cannot touch tokens or the secret', () => {
  for (const [, props] of MODES) {
    for (const st of statements(synth(props)).filter((x) => x.fn === 'ConversationEventsFunction')) {
      assert.notEqual(st.resource, 'TokenTable.Arn');
      assert.ok(!st.actions.some((a) => a.startsWith('secretsmanager:')));
    }
  }
});

test('key statements go through the service, on the table\'s or queue\'s context', () => {
  for (const st of statements(synth({ deliveryMode: 'Batch', ...SINGLE_ORG, genesysSecretKeyArn: SECRET_KEY })).filter((x) => x.actions.some((a) => a.startsWith('kms:')))) {
    const via = st.condition.StringEquals['kms:ViaService'];
    assert.match(via, /^(dynamodb|sqs|secretsmanager)\.\$\{AWS::Region\}\.amazonaws\.com$/, `${st.fn} ${st.sid}`);
    if (st.resource === 'TokenKey.Arn') assert.ok(st.condition.StringEquals['kms:EncryptionContext:aws:dynamodb:tableName'], `${st.fn} ${st.sid}`);
    if (st.resource === 'QueueKey.Arn') assert.ok(st.condition.StringEquals['kms:EncryptionContext:aws:sqs:arn'], `${st.fn} ${st.sid}`);
  }
});

test('functions: arm64, provided.al2023, bootstrap, tracing as FunctionTracing', () => {
  for (const tracing of ['Active', 'PassThrough'] as const) {
    const s = synth({ ...SINGLE_ORG, functionTracing: tracing });
    for (const fn of FUNCTIONS) {
      const p = s.byId[fn].Properties;
      assert.deepEqual(p.Architectures, ['arm64']);
      assert.equal(p.Runtime, 'provided.al2023');
      assert.equal(p.Handler, 'bootstrap');
      assert.deepEqual(p.TracingConfig, { Mode: tracing });
    }
  }
});

test('with many orgs, the dashboard reads one org through the tagged org reader role', () => {
  const s = synth(MULTI_ORG);
  const reader = s.byId.DashboardOrgReaderRole.Properties;
  const trust = reader.AssumeRolePolicyDocument.Statement[0];
  assert.deepEqual(trust.Principal, { AWS: { 'Fn::GetAtt': [s.logicalId('DashboardApiFunctionRole'), 'Arn'] } });
  assert.deepEqual(trust.Condition['ForAllValues:StringEquals'], { 'aws:TagKeys': ['org'] });
  const doc = inlinePolicy(s.byId.DashboardOrgReaderRole, 'OneOrgsBuckets');
  assert.deepEqual(doc.Statement[0].Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys'],
    ['org#${aws:PrincipalTag/org}#agg#*', 'org#${aws:PrincipalTag/org}#flows', 'org#${aws:PrincipalTag/org}#hours', 'org#${aws:PrincipalTag/org}#dirty#*']);
  assert.deepEqual(s.byId.DashboardApiFunction.Properties.Environment.Variables.ORG_READER_ROLE_ARN, { 'Fn::GetAtt': [s.logicalId('DashboardOrgReaderRole'), 'Arn'] });
  assert.equal(synth().byId.DashboardOrgReaderRole, undefined);
});

test('the operator policy: redrive always, org administration with many orgs', () => {
  const single = sids(synth().byId.OperatorPolicy.Properties.PolicyDocument);
  const base = ['RedriveReadsDeadLetters', 'RedriveDecryptsDeadLetters', 'RedriveCounts', 'RedriveMarksLateHours', 'LayoutReadRecord',
    'RedriveReadsConversationState', 'MigrateFindsLayout1', 'MigrateDeletesLayout1', 'DataTablesKey'];
  assert.deepEqual(single, base);
  const multi = sids(synth({ ...MULTI_ORG, genesysSecretKeyArn: SECRET_KEY }).byId.OperatorPolicy.Properties.PolicyDocument);
  assert.deepEqual(multi, [...base, 'RegistryList', 'EventBusCount', 'RegistryItems', 'OrgSecrets', 'OffboardListsRules', 'OffboardDisablesOrgRules',
    'OffboardFindsOrgItems', 'OffboardPurgesOrgItems', 'OrgCheckTokens', 'OrgCheckTokensKey', 'OrgSecretsKey']);
});

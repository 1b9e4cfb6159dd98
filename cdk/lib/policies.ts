import { Conditions, TENANT_FIELDS, oauthSecretArn, viaService } from './conditions';
import { ResolvedProps } from './props';
import { Queues } from './queues';
import { Tables } from './tables';
import { Keys } from './keys';

/** An IAM policy statement as the template writes it (raw JSON). */
export type Statement = Record<string, unknown>;

/** What the functions' statements name. */
export interface PolicyRefs {
  readonly p: ResolvedProps;
  readonly c: Conditions;
  readonly keys: Keys;
  readonly tables: Tables;
  readonly queues: Queues;
}

export function document(statements: (Statement | undefined)[]): Record<string, unknown> {
  return { Version: '2012-10-17', Statement: statements.filter((s): s is Statement => s !== undefined) };
}

/** The statement when the condition holds (the template's `!If [Cond, stmt, NoValue]`). */
const when = (cond: boolean, s: Statement): Statement | undefined => (cond ? s : undefined);

const leadingKeys = (keys: string[]) => ({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': keys } });

const COUNTED = ['agg#*', 'event#*', 'conv#*', 'pending#*', 'names#*', 'org#*#agg#*', 'org#*#event#*', 'org#*#conv#*', 'org#*#pending#*', 'org#*#names#*'];
const DIRTY = ['dirty#*', 'org#*#dirty#*'];
const TOKEN_HEALTH = ['pk', 'expires_at', 'refresh_at', 'version', 'lease_until', 'stale_version', 'failures', 'next_attempt_at', 'last_error_code', 'refreshed_at'];

function secretKey(r: PolicyRefs): Statement | undefined {
  // Secrets under a customer managed key: decrypted by Secrets Manager only.
  return when(r.c.hasSecretKey, {
    Sid: 'OAuthClientSecretKey', Effect: 'Allow', Action: 'kms:Decrypt', Resource: r.p.genesysSecretKeyArn,
    Condition: { StringEquals: { 'kms:ViaService': viaService('secretsmanager') } },
  });
}

function tokenTableKey(r: PolicyRefs, sid: string, actions: string[]): Statement {
  return {
    Sid: sid, Effect: 'Allow', Action: actions, Resource: r.keys.tokenKey.attrArn,
    Condition: { StringEquals: { 'kms:ViaService': viaService('dynamodb'), 'kms:EncryptionContext:aws:dynamodb:tableName': r.tables.tokenTable.ref } },
  };
}

function analyticsTableKey(r: PolicyRefs, actions: string[]): Statement {
  return {
    Sid: 'AnalyticsTableKey', Effect: 'Allow', Action: actions, Resource: r.keys.dataKey.attrArn,
    Condition: { StringEquals: { 'kms:ViaService': viaService('dynamodb') } },
  };
}

function layoutRead(r: PolicyRefs): Statement {
  return { Sid: 'LayoutRead', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: r.tables.analyticsTable.attrArn, Condition: leadingKeys(['layout']) };
}

function tenantRead(r: PolicyRefs): Statement | undefined {
  return when(r.c.multiOrg, {
    Sid: 'TenantRead', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: r.tables.tenantTable?.attrArn,
    Condition: {
      ...leadingKeys(['tenant#*']),
      'ForAllValues:StringEquals': { 'dynamodb:Attributes': TENANT_FIELDS },
      StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
    },
  });
}

function tenantsList(r: PolicyRefs): Statement | undefined {
  return when(r.c.multiOrg, { Sid: 'TenantsList', Effect: 'Allow', Action: 'dynamodb:Scan', Resource: r.tables.tenantTable?.attrArn });
}

/** token-refresher: its token items, the OAuth secret(s), the tenant list. */
export function tokenRefresherStatements(r: PolicyRefs): Record<string, unknown> {
  return document([
    { Sid: 'TokenItems', Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], Resource: r.tables.tokenTable.attrArn, Condition: leadingKeys(['token#*']) },
    { Sid: 'OAuthClientSecret', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: oauthSecretArn(r.p, r.c) },
    secretKey(r),
    tokenTableKey(r, 'TokenTableKey', ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:DescribeKey']),
    tenantsList(r),
    when(r.c.multiOrg, {
      Sid: 'TenantTableKey', Effect: 'Allow', Action: ['kms:Decrypt', 'kms:DescribeKey'], Resource: r.keys.dataKey.attrArn,
      Condition: { StringEquals: { 'kms:ViaService': viaService('dynamodb'), 'kms:EncryptionContext:aws:dynamodb:tableName': r.tables.tenantTable?.ref } },
    }),
  ]);
}

/** conversation-events: counts, marks, its dead letters; never a token or a secret. */
export function conversationEventsStatements(r: PolicyRefs): Record<string, unknown> {
  const analytics = r.tables.analyticsTable.attrArn;
  const dlq = r.queues.deadLetterQueue.attrArn;
  return document([
    { Sid: 'AnalyticsWrites', Effect: 'Allow', Action: ['dynamodb:PutItem', 'dynamodb:UpdateItem'], Resource: analytics, Condition: leadingKeys(COUNTED) },
    { Sid: 'LateWriteMarks', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: analytics, Condition: leadingKeys(DIRTY) },
    layoutRead(r),
    { Sid: 'ConversationStateRead', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: analytics, Condition: leadingKeys(['conv#*', 'org#*#conv#*']) },
    tenantRead(r),
    analyticsTableKey(r, ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:DescribeKey']),
    { Sid: 'FailedAndRejectedEvents', Effect: 'Allow', Action: 'sqs:SendMessage', Resource: dlq },
    {
      Sid: 'QueueKey', Effect: 'Allow', Action: ['kms:GenerateDataKey', 'kms:Decrypt'], Resource: r.keys.queueKey.attrArn,
      Condition: { StringEquals: { 'kms:ViaService': viaService('sqs'), 'kms:EncryptionContext:aws:sqs:arn': dlq } },
    },
    when(r.c.batchDelivery, {
      Sid: 'BatchQueue', Effect: 'Allow', Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'], Resource: r.queues.eventQueue?.attrArn,
    }),
    // The event source mapping polls with this role.
    when(r.c.batchDelivery, {
      Sid: 'BatchQueueKey', Effect: 'Allow', Action: 'kms:Decrypt', Resource: r.keys.queueKey.attrArn,
      Condition: { StringEquals: { 'kms:ViaService': viaService('sqs'), 'kms:EncryptionContext:aws:sqs:arn': r.queues.eventQueue?.attrArn } },
    }),
  ]);
}

/** What SAM's EventInvokeConfig (OnFailure Type SQS) adds to the role (SAM writes no Version). */
export function onFailureSqsStatements(r: PolicyRefs): Record<string, unknown> {
  return { Statement: [{ Action: 'sqs:SendMessage', Effect: 'Allow', Resource: r.queues.deadLetterQueue.attrArn }] };
}

/** enrichment-sweeper: pending sessions, the roll-up, the lease, token items and the secret(s). */
export function enrichmentSweeperStatements(r: PolicyRefs): Record<string, unknown> {
  const analytics = r.tables.analyticsTable.attrArn;
  return document([
    { Sid: 'TokenItemsReadMarkStaleAcquire', Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], Resource: r.tables.tokenTable.attrArn, Condition: leadingKeys(['token#*']) },
    { Sid: 'PendingSessions', Effect: 'Allow', Action: ['dynamodb:Query', 'dynamodb:DeleteItem'], Resource: analytics, Condition: leadingKeys(['pending#*', 'dirty#*', 'org#*#pending#*', 'org#*#dirty#*']) },
    { Sid: 'LateEnrichmentMarks', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: analytics, Condition: leadingKeys(DIRTY) },
    { Sid: 'RollUpReads', Effect: 'Allow', Action: 'dynamodb:Query', Resource: analytics, Condition: leadingKeys(['agg#*', 'org#*#agg#*']) },
    { Sid: 'SweepLease', Effect: 'Allow', Action: ['dynamodb:PutItem', 'dynamodb:DeleteItem'], Resource: analytics, Condition: leadingKeys(['sweeper#lease']) },
    layoutRead(r),
    {
      Sid: 'EnrichmentWrites', Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'], Resource: analytics,
      Condition: leadingKeys(['agg#*', 'event#*', 'conv#*', 'names#*', 'flows', 'hours', 'org#*#agg#*', 'org#*#event#*', 'org#*#conv#*', 'org#*#names#*', 'org#*#flows', 'org#*#hours']),
    },
    tenantsList(r),
    { Sid: 'OAuthClientSecretForSingleFlightRecovery', Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: oauthSecretArn(r.p, r.c) },
    secretKey(r),
    analyticsTableKey(r, ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:DescribeKey']),
    tokenTableKey(r, 'TokenTableKey', ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:DescribeKey']),
  ]);
}

/** dashboard-api: aggregate reads, token health attributes only, one org's reader (MultiOrg). */
export function dashboardApiStatements(r: PolicyRefs, orgReaderRolesArn: string): Record<string, unknown> {
  return document([
    { Sid: 'AggregatesRead', Effect: 'Allow', Action: 'dynamodb:Query', Resource: r.tables.analyticsTable.attrArn, Condition: leadingKeys(['agg#*', 'flows', 'hours', 'dirty#*']) },
    when(r.c.multiOrg, { Sid: 'AssumeOneOrgReader', Effect: 'Allow', Action: ['sts:AssumeRole', 'sts:TagSession'], Resource: orgReaderRolesArn }),
    tenantRead(r),
    when(r.c.multiOrg, {
      Sid: 'TenantList', Effect: 'Allow', Action: 'dynamodb:Scan', Resource: r.tables.tenantTable?.attrArn,
      Condition: { 'ForAllValues:StringEquals': { 'dynamodb:Attributes': TENANT_FIELDS }, StringEquals: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' } },
    }),
    layoutRead(r),
    {
      Sid: 'TokenHealthRead', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: r.tables.tokenTable.attrArn,
      Condition: {
        ...leadingKeys(['token#*']),
        'ForAllValues:StringEquals': { 'dynamodb:Attributes': TOKEN_HEALTH },
        StringEqualsIfExists: { 'dynamodb:Select': 'SPECIFIC_ATTRIBUTES' },
      },
    },
    analyticsTableKey(r, ['kms:Decrypt', 'kms:DescribeKey']),
    tokenTableKey(r, 'TokenTableKeyForHealthReads', ['kms:Decrypt', 'kms:DescribeKey']),
  ]);
}

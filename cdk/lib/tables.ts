import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { Conditions } from './conditions';
import { Keys, retained } from './keys';

export interface Tables {
  readonly tokenTable: dynamodb.CfnTable;
  /** Tenancy=MultiOrg only. */
  readonly tenantTable?: dynamodb.CfnTable;
  readonly analyticsTable: dynamodb.CfnTable;
}

/**
 * The three tables, L1 (the L2 Table renders SSE and billing differently):
 * the token table (a cache: no point-in-time recovery), the tenant registry
 * (MultiOrg; small and precious: PITR, Retain) and the analytics table
 * (the product's history: PITR, Retain).
 */
export function createTables(scope: Construct, keys: Keys, c: Conditions): Tables {
  const pk = { attributeName: 'pk', attributeType: 'S' };
  const sse = (key: { ref: string }) => ({ sseEnabled: true, sseType: 'KMS', kmsMasterKeyId: key.ref });
  const ttl = { attributeName: 'ttl', enabled: true };

  const tokenTable = new dynamodb.CfnTable(scope, 'TokenTable', {
    billingMode: 'PAY_PER_REQUEST',
    attributeDefinitions: [pk],
    keySchema: [{ attributeName: 'pk', keyType: 'HASH' }],
    sseSpecification: sse(keys.tokenKey),
    timeToLiveSpecification: ttl,
  });

  const tenantTable = c.multiOrg
    ? retained(new dynamodb.CfnTable(scope, 'TenantTable', {
      billingMode: 'PAY_PER_REQUEST',
      attributeDefinitions: [pk],
      keySchema: [{ attributeName: 'pk', keyType: 'HASH' }],
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      sseSpecification: sse(keys.dataKey),
    }))
    : undefined;

  const analyticsTable = retained(new dynamodb.CfnTable(scope, 'AnalyticsTable', {
    billingMode: 'PAY_PER_REQUEST',
    attributeDefinitions: [pk, { attributeName: 'sk', attributeType: 'S' }, { attributeName: 'org_shard', attributeType: 'S' }],
    keySchema: [{ attributeName: 'pk', keyType: 'HASH' }, { attributeName: 'sk', keyType: 'RANGE' }],
    // Sparse: only org items carry org_shard, so `va-admin org offboard`
    // purges an org with queries, not a scan.
    globalSecondaryIndexes: [{
      indexName: 'OrgItems',
      keySchema: [{ attributeName: 'org_shard', keyType: 'HASH' }],
      projection: { projectionType: 'KEYS_ONLY' },
    }],
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    sseSpecification: sse(keys.dataKey),
    timeToLiveSpecification: ttl,
  }));
  return { tokenTable, tenantTable, analyticsTable };
}

import { Aws, Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';
import {
  PolicyRefs, conversationEventsStatements, dashboardApiStatements, enrichmentSweeperStatements,
  onFailureSqsStatements, tokenRefresherStatements,
} from './policies';
import { REFRESH_PERIODS } from './props';

/** The four functions' logical ids (SAM's), which also name their roles and events. */
export const FUNCTION_IDS = ['TokenRefresherFunction', 'ConversationEventsFunction', 'EnrichmentSweeperFunction', 'DashboardApiFunction'] as const;
export type FunctionId = (typeof FUNCTION_IDS)[number];

export type Roles = Record<FunctionId, iam.CfnRole>;
export type Functions = Record<FunctionId, lambda.Function>;

/** The dashboard's references that its function's environment names. */
export interface DashboardEnv {
  readonly authIssuer: string;
  readonly authClientId: string;
  /** Tenancy=MultiOrg only. */
  readonly orgReaderRoleArn?: string;
}

/**
 * Each function's role as SAM's transform makes `<Function>Role`: the
 * Lambda trust, AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess (SAM
 * attaches it whenever `Tracing` is set, as the template's Globals do) and
 * the function's `Policies` as `<Function>RolePolicy0`. Built by hand so no
 * CDK grant adds a statement.
 */
export function createRoles(scope: Construct, r: PolicyRefs): Roles {
  const orgReaderRolesArn = `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role/${Aws.STACK_NAME}/*`;
  const role = (id: FunctionId, document: Record<string, unknown>, before: iam.CfnRole.PolicyProperty[] = []) =>
    new iam.CfnRole(scope, `${id}Role`, {
      assumeRolePolicyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: ['sts:AssumeRole'], Effect: 'Allow', Principal: { Service: ['lambda.amazonaws.com'] } }],
      },
      managedPolicyArns: [
        `arn:${Aws.PARTITION}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole`,
        `arn:${Aws.PARTITION}:iam::aws:policy/AWSXrayWriteOnlyAccess`,
      ],
      policies: [...before, { policyName: `${id}RolePolicy0`, policyDocument: document }],
    });
  return {
    TokenRefresherFunction: role('TokenRefresherFunction', tokenRefresherStatements(r)),
    // SAM puts the on-failure destination's statement first.
    ConversationEventsFunction: role('ConversationEventsFunction', conversationEventsStatements(r), [
      { policyName: 'ConversationEventsFunctionEventInvokeConfigOnFailureSQSPolicy', policyDocument: onFailureSqsStatements(r) },
    ]),
    EnrichmentSweeperFunction: role('EnrichmentSweeperFunction', enrichmentSweeperStatements(r)),
    DashboardApiFunction: role('DashboardApiFunction', dashboardApiStatements(r, orgReaderRolesArn)),
  };
}

interface FunctionSpec {
  readonly binary: string;
  readonly description: string;
  readonly memorySize: number;
  readonly timeoutSeconds: number;
  readonly reserved: number;
  readonly environment: Record<string, string>;
}

/**
 * The four Rust functions (cargo-lambda-cdk, arm64, provided.al2023), with
 * the template's Globals and per-function properties, their log groups and
 * their schedules; conversation-events' on-failure destination.
 */
export function createFunctions(scope: Construct, r: PolicyRefs, roles: Roles, dashboard: DashboardEnv): Functions {
  const { p, c, tables, queues } = r;
  const analyticsTable = tables.analyticsTable.ref;
  const retention = { MINUTE_CELL_RETENTION_DAYS: String(p.minuteCellRetentionDays), HOUR_CELL_RETENTION_DAYS: String(p.hourCellRetentionDays) };
  const specs: Record<FunctionId, FunctionSpec> = {
    TokenRefresherFunction: {
      binary: 'token-refresher',
      description: 'Keeps every token slot fresh and replaces dead tokens.',
      memorySize: 256, timeoutSeconds: 120, reserved: p.refresherReservedConcurrency, environment: {},
    },
    ConversationEventsFunction: {
      binary: 'conversation-events',
      description: 'Virtual Agent KPIs per minute, each event counted exactly once; never calls Genesys Cloud.',
      memorySize: 256, timeoutSeconds: 30, reserved: p.eventsReservedConcurrency,
      environment: { ANALYTICS_TABLE: analyticsTable, DEAD_LETTER_QUEUE_URL: queues.deadLetterQueue.ref, ...retention },
    },
    EnrichmentSweeperFunction: {
      binary: 'enrichment-sweeper',
      description: 'Adds final intents and bot results of ended bot sessions, in batches, exactly once.',
      memorySize: 256, timeoutSeconds: 120, reserved: p.sweeperReservedConcurrency,
      environment: {
        ANALYTICS_TABLE: analyticsTable, ...retention,
        ENRICHMENT_DELAY_SECONDS: String(p.enrichmentDelaySeconds), ENRICHMENT_GIVE_UP_HOURS: String(p.enrichmentGiveUpHours),
      },
    },
    DashboardApiFunction: {
      binary: 'dashboard-api',
      description: 'Read-only dashboard page and JSON (aggregates, token health attributes; never a token or an error text).',
      memorySize: 512, timeoutSeconds: 29, reserved: p.dashboardReservedConcurrency,
      environment: {
        ANALYTICS_TABLE: analyticsTable, AUTH_ISSUER: dashboard.authIssuer, AUTH_CLIENT_ID: dashboard.authClientId,
        ...(dashboard.orgReaderRoleArn ? { ORG_READER_ROLE_ARN: dashboard.orgReaderRoleArn } : {}),
      },
    },
  };

  // The template's Globals.Function.Environment.
  const globals: Record<string, string> = {
    RUST_LOG: 'info',
    PER_ORG_METRICS: String(p.perOrgMetrics),
    TOKEN_TABLE: tables.tokenTable.ref,
    GENESYS_SECRET_ID: p.genesysSecretArn,
    GENESYS_REGION: p.genesysRegion,
    TOKEN_POOL_SIZE: String(p.tokenPoolSize),
    TOKEN_REFRESH_MARGIN_SECONDS: String(p.tokenRefreshMarginSeconds),
    TOKEN_REFRESHER_PERIOD_SECONDS: String(REFRESH_PERIODS[p.refreshPeriodMinutes].seconds),
    TOKEN_LEASE_SECONDS: String(p.tokenLeaseSeconds),
    ...(c.multiOrg && tables.tenantTable ? { TENANTS_TABLE: tables.tenantTable.ref } : {}),
  };

  const fns = {} as Functions;
  for (const id of FUNCTION_IDS) {
    const spec = specs[id];
    const fn = new RustFunction(scope, id, {
      manifestPath: p.cargoManifestPath,
      binaryName: spec.binary,
      runtime: 'provided.al2023',
      architecture: lambda.Architecture.ARM_64,
      // Immutable: CDK adds no statement to the role SAM's transform defines.
      role: iam.Role.fromRoleArn(scope, `${id}RoleRef`, roles[id].attrArn, { mutable: false }),
      description: spec.description,
      memorySize: spec.memorySize,
      timeout: Duration.seconds(spec.timeoutSeconds),
      reservedConcurrentExecutions: spec.reserved === 0 ? undefined : spec.reserved,
      environment: { ...globals, ...spec.environment },
    });
    // Set on the L1: the L2's `tracing` adds an X-Ray statement of its own,
    // where SAM attaches AWSXrayWriteOnlyAccess (above).
    (fn.node.defaultChild as lambda.CfnFunction).tracingConfig = { mode: p.functionTracing };
    fns[id] = fn;
  }

  for (const [id, logs_id] of [
    ['TokenRefresherFunction', 'TokenRefresherLogs'], ['ConversationEventsFunction', 'ConversationEventsLogs'],
    ['EnrichmentSweeperFunction', 'EnrichmentSweeperLogs'], ['DashboardApiFunction', 'DashboardApiLogs'],
  ] as const) {
    // L1: the L2 function's logRetention would add a custom resource.
    new logs.CfnLogGroup(scope, logs_id, { logGroupName: `/aws/lambda/${fns[id].functionName}`, retentionInDays: p.logRetentionDays });
  }

  schedule(scope, fns.TokenRefresherFunction, 'TokenRefresherFunction', 'Tick', REFRESH_PERIODS[p.refreshPeriodMinutes].schedule);
  schedule(scope, fns.EnrichmentSweeperFunction, 'EnrichmentSweeperFunction', 'Sweep', 'rate(1 minute)');

  // One failure path: after its retries a failed invocation goes to the
  // dead-letter queue as an invocation record, not also to a function DLQ.
  new lambda.CfnEventInvokeConfig(scope, 'ConversationEventsFunctionEventInvokeConfig', {
    functionName: fns.ConversationEventsFunction.functionName,
    qualifier: '$LATEST',
    maximumRetryAttempts: 2,
    maximumEventAgeInSeconds: 21600,
    destinationConfig: { onFailure: { destination: queues.deadLetterQueue.attrArn } },
  });
  return fns;
}

/** A SAM `Schedule` event: the rule `<Function><Event>` and its permission. */
function schedule(scope: Construct, fn: lambda.Function, fnId: FunctionId, event: string, expression: string): void {
  const rule = new events.CfnRule(scope, `${fnId}${event}`, {
    scheduleExpression: expression,
    targets: [{ arn: fn.functionArn, id: `${fnId}${event}LambdaTarget` }],
  });
  new lambda.CfnPermission(scope, `${fnId}${event}Permission`, {
    action: 'lambda:InvokeFunction',
    functionName: fn.functionName,
    principal: 'events.amazonaws.com',
    sourceArn: rule.attrArn,
  });
}

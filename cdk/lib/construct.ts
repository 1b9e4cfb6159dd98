import { Construct } from 'constructs';
import { createAlarms } from './alarms';
import { applyCheckovSkips } from './checkov';
import { Conditions, conditions } from './conditions';
import { createHttpApi, createSignIn } from './dashboard';
import { createDelivery } from './delivery';
import { Functions, Roles, createFunctions, createRoles } from './functions';
import { Keys, createKeys } from './keys';
import { applyNagSuppressions } from './nag';
import { createOperatorPolicy, createOrgReaderRole } from './operator';
import { PolicyRefs } from './policies';
import { GenesysVirtualAgentAnalyticsProps, ResolvedProps, resolveProps } from './props';
import { Queues, createQueuePolicies, createQueues } from './queues';
import { createOutputs } from './outputs';
import { Tables, createTables } from './tables';

/**
 * Genesys Cloud Virtual Agent analytics: what infra/template.yaml (AWS SAM)
 * deploys, as one construct. Every CloudFormation resource is a direct
 * child whose id is the logical id SAM's transform gives it, so the two
 * templates compare resource by resource (`aws:cdk:path`).
 */
export class GenesysVirtualAgentAnalytics extends Construct {
  /** The props after defaults and validation. */
  public readonly props: ResolvedProps;
  /** The template's Conditions, as resolved from the props. */
  public readonly conditions: Conditions;
  public readonly keys: Keys;
  public readonly tables: Tables;
  public readonly queues: Queues;
  public readonly roles: Roles;
  public readonly functions: Functions;
  /** The alarms' ids, in the template's order. */
  public readonly alarmIds: string[];

  constructor(scope: Construct, id: string, props: GenesysVirtualAgentAnalyticsProps = {}) {
    super(scope, id);
    const p = resolveProps(props);
    const c = conditions(p);
    this.props = p;
    this.conditions = c;
    // SAM makes the functions' log groups here (with retention): a CDK
    // managed one per function would be a second resource of the same name.
    this.node.setContext('@aws-cdk/aws-lambda:useCdkManagedLogGroup', false);

    this.keys = createKeys(this, p, c);
    this.tables = createTables(this, this.keys, c);
    this.queues = createQueues(this, this.keys, c);
    const refs: PolicyRefs = { p, c, keys: this.keys, tables: this.tables, queues: this.queues };

    const signIn = createSignIn(this);
    this.roles = createRoles(this, refs);
    const orgReader = c.multiOrg ? createOrgReaderRole(this, refs, this.roles.DashboardApiFunction) : undefined;
    this.functions = createFunctions(this, refs, this.roles, {
      authIssuer: signIn.issuer,
      authClientId: signIn.client.ref,
      orgReaderRoleArn: orgReader?.attrArn,
    });

    const batchRuleArn = createDelivery(this, p, c, this.queues, this.functions.ConversationEventsFunction);
    createQueuePolicies(this, p, c, this.queues, batchRuleArn);
    const api = createHttpApi(this, p, signIn, this.functions.DashboardApiFunction);
    const operator = createOperatorPolicy(this, refs);
    this.alarmIds = createAlarms(this, p, c, this.queues, this.functions, api);
    createOutputs(this, c, this.tables, this.queues, this.functions, api, signIn, operator);
    applyNagSuppressions(this, c);
    applyCheckovSkips(this);
  }
}

import * as fs from 'node:fs';
import { App, AppProps, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { GenesysVirtualAgentAnalytics } from './construct';
import { GenesysVirtualAgentAnalyticsProps } from './props';

/** The example stack's name (cdk.out/GenesysVaAnalytics.template.json). */
export const STACK_NAME = 'GenesysVaAnalytics';

/**
 * Example values for a SingleOrg deployment: placeholders of the right
 * shape (no real account, org or secret). Replace them with `-c props=`
 * or the environment variables below.
 */
export const EXAMPLE_PROPS: GenesysVirtualAgentAnalyticsProps = {
  tenancy: 'SingleOrg',
  genesysRegion: 'us-east-1',
  genesysSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:genesys/va-analytics-AbCdEf',
  genesysEventSourceName: 'aws.partner/genesys.com/cloud/00000000-0000-0000-0000-000000000000/va-analytics',
};

/**
 * The props for the example app. With the context `props` (a JSON object
 * of props, inline or a file's path: `cdk synth -c props=multi-org.json`)
 * exactly those, the construct's defaults (the SAM template's) filling in
 * the rest; without it EXAMPLE_PROPS. Then the environment variables
 * GENESYS_SECRET_ARN, GENESYS_EVENT_SOURCE_NAME and GENESYS_REGION, when
 * set, replace their props.
 */
export function propsFromContext(app: App, env: NodeJS.ProcessEnv = process.env): GenesysVirtualAgentAnalyticsProps {
  const raw = app.node.tryGetContext('props');
  let base: Record<string, unknown> = { ...EXAMPLE_PROPS };
  if (typeof raw === 'object' && raw !== null) {
    base = raw;
  } else if (typeof raw === 'string' && raw !== '') {
    base = JSON.parse(raw.trim().startsWith('{') ? raw : fs.readFileSync(raw, 'utf8'));
  }
  const fromEnv: Record<string, string> = {};
  if (env.GENESYS_SECRET_ARN !== undefined) fromEnv.genesysSecretArn = env.GENESYS_SECRET_ARN;
  if (env.GENESYS_EVENT_SOURCE_NAME !== undefined) fromEnv.genesysEventSourceName = env.GENESYS_EVENT_SOURCE_NAME;
  if (env.GENESYS_REGION !== undefined) fromEnv.genesysRegion = env.GENESYS_REGION;
  return { ...base, ...fromEnv } as GenesysVirtualAgentAnalyticsProps;
}

/**
 * The example app: one stack named GenesysVaAnalytics (context
 * `stackName` renames it) holding the construct, checked by cdk-nag's
 * AwsSolutions rules. Environment-agnostic (the CLI's account and region);
 * no CDKMetadata resource: the stack has only what the SAM template makes.
 */
export function createApp(appProps: AppProps = {}, props?: GenesysVirtualAgentAnalyticsProps): { app: App; stack: Stack; construct: GenesysVirtualAgentAnalytics } {
  const app = new App(appProps);
  // `-c bundling=false`: no cargo build, a placeholder asset (the CLI
  // refuses user context under `aws:`, so the app sets it).
  if (String(app.node.tryGetContext('bundling')) === 'false') app.node.setContext('aws:cdk:bundling-stacks', []);
  const stackName = app.node.tryGetContext('stackName') ?? STACK_NAME;
  const stack = new Stack(app, stackName, {
    analyticsReporting: false,
    // infra/template.yaml's Description.
    description: 'Genesys Cloud Virtual Agent analytics with fleet-safe tokens: a scheduled token refresher, an EventBridge-triggered event handler counting each event exactly once, and a read-only dashboard behind a Cognito sign-in.\n',
  });
  const construct = new GenesysVirtualAgentAnalytics(stack, 'Analytics', props ?? propsFromContext(app));
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack, construct };
}

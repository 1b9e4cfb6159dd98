#!/usr/bin/env node
// The example app (cdk.json runs it): one stack, GenesysVaAnalytics, with
// the construct in SingleOrg mode; see cdk/README.md for its props.
import { createApp } from '../lib/app';

createApp().app.synth();

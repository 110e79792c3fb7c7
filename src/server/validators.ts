// The config checks the features contribute (their manifests' `validators`, plus the core's
// upstream checks with the features' policies), as collected by the composition root.
import { COMPOSITION } from '../features.ts';

export const pluginValidators = COMPOSITION.validators;

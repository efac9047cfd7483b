/** The job types Conveyor ships with. They are registered like any user handler. */
import { pdfHandler } from './pdf.js';
import type { HandlerDefinition } from './registry.js';
import { sessionHandler } from './session.js';

export const builtInHandlers: HandlerDefinition[] = [
  pdfHandler as unknown as HandlerDefinition,
  sessionHandler as unknown as HandlerDefinition,
];

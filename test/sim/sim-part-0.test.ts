import { describe } from 'vitest';
import { defineRange } from './run-range.js';

describe('deterministic simulation, first half of the seeds', () => defineRange(0));

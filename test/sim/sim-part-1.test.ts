import { describe } from 'vitest';
import { defineRange } from './run-range.js';

describe('deterministic simulation, second half of the seeds', () => defineRange(1));

import { describe } from 'vitest';
import { defineProdRange } from './prod-range.js';

describe('production-code simulation, part 0 of the seeds', () => defineProdRange(0));

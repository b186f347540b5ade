import { describe } from 'vitest';
import { defineProdRange } from './prod-range.js';

describe('production-code simulation, part 1 of the seeds', () => defineProdRange(1));

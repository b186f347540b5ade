import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'bench/results/**', 'test/hil/work/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The layering rule of DESIGN.md: only the composition roots may wire the emulator in.
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/scenario/**'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['**/firmware-sim/**', 'firmware-sim', 'firmware-sim/**'], message: 'src/ must not import firmware-sim/ outside src/cli and src/scenario (DESIGN.md boundaries).' }],
      }],
    },
  },
  {
    // The protocol core is pure: clock, network and storage are injected.
    files: ['src/ptp/**/*.ts'],
    ignores: ['src/ptp/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ['node:net', 'node:fs', 'node:dgram', 'node:fs/promises', 'net', 'fs'].map((name) => ({ name, message: 'src/ptp is pure: inject network and storage.' })),
        patterns: [{ group: ['**/firmware-sim/**'], message: 'src/ must not import firmware-sim/.' }],
      }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'src/ptp never reads the wall clock: use the injected Clock.' }],
      'no-restricted-globals': ['error', { name: 'setTimeout', message: 'src/ptp uses the injected Clock for timers.' }, { name: 'setInterval', message: 'src/ptp uses the injected Clock for timers.' }],
    },
  },
  {
    files: ['src/scsi/**/*.ts'],
    ignores: ['src/scsi/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: 'src/scsi is a pure codec: it imports nothing from Node.' }] }],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);

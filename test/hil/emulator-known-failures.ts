/**
 * Guest checks (test/hil/guest/tools-check.sh) that fail against ptpvts's own target
 * because a real Linux tool exposed an emulator bug that is not fixed yet. Each entry says
 * what the tool saw and what the standard asks for; the check is asserted to still fail,
 * so the entry goes as soon as the emulator is fixed. Keys are check names.
 */
export const emulatorKnownFailures: Readonly<Record<string, string>> = {};

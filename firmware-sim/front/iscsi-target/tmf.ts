/**
 * Task management (RFC 7143 11.5, SAM-5 7): the unit is told first, then the session's
 * tasks it ends are aborted (they get no answer), and the TMF response goes out once those
 * tasks are over. An ABORT TASK for a command not yet arrived but inside the CmdSN window
 * keeps it from running when it comes.
 */
import { Opcode, TmfFunction, TmfResponse } from '../../../src/iscsi/constants.js';
import { decodeLun, type TaskMgmtRequestPdu } from '../../../src/iscsi/pdu.js';
import type { TaskManagement } from '../../engine/types.js';
import type { TargetConnection } from './connection.js';
import type { Task } from './task.js';

export async function taskManagement(c: TargetConnection, p: TaskMgmtRequestPdu): Promise<void> {
  const respond = (response: number): void => {
    if (c.phase === 'full') c.send({ opcode: Opcode.TASK_MGMT_RESPONSE, response, itt: p.itt, ...c.sn(true) });
  };
  const lunNumber = decodeLun(p.lun);
  const units = c.ctx.options.target.luns();
  c.tasks.forgetLuns();
  const unit = lunNumber === undefined ? undefined : units.get(lunNumber);
  const abortTasks = async (which: (t: Task) => boolean): Promise<void> => {
    const hit = [...c.tasks.byItt.values()].filter(which);
    for (const t of hit) {
      t.abort(new Error('aborted by task management'));
      c.tasks.byItt.delete(t.itt);
    }
    // Commands that waited behind an aborted one for their turn may run now.
    for (const u of new Set(hit.map((t) => t.unit))) if (u) c.tasks.runWaiting(u);
    // The answer to a TMF goes out only once the tasks it ended are over.
    await Promise.all(hit.map((t) => t.done ?? Promise.resolve()));
  };
  const fn = p.function;
  const needsLun = fn === TmfFunction.ABORT_TASK || fn === TmfFunction.ABORT_TASK_SET || fn === TmfFunction.CLEAR_TASK_SET || fn === TmfFunction.LOGICAL_UNIT_RESET;
  if (needsLun && !unit) return respond(TmfResponse.LUN_DOES_NOT_EXIST);
  const toUnit = (f: TaskManagement): void => unit?.taskManagement(f, c.nexus);
  switch (fn) {
    case TmfFunction.ABORT_TASK: {
      const t = c.tasks.byItt.get(p.referencedTaskTag);
      if (t) {
        await abortTasks((x) => x === t);
        return respond(TmfResponse.FUNCTION_COMPLETE);
      }
      // Not arrived yet but inside the window: it must not run when it comes.
      if (c.window.expects(p.refCmdSN)) {
        c.tasks.preAborted.add(p.referencedTaskTag);
        if (c.tasks.preAborted.size > 1024) c.tasks.preAborted.clear();
        return respond(TmfResponse.FUNCTION_COMPLETE);
      }
      return respond(TmfResponse.TASK_DOES_NOT_EXIST);
    }
    case TmfFunction.ABORT_TASK_SET:
      toUnit('abort-task-set');
      await abortTasks((t) => t.lun === p.lun);
      return respond(TmfResponse.FUNCTION_COMPLETE);
    case TmfFunction.CLEAR_TASK_SET:
      toUnit('clear-task-set');
      await abortTasks((t) => t.lun === p.lun);
      return respond(TmfResponse.FUNCTION_COMPLETE);
    case TmfFunction.LOGICAL_UNIT_RESET:
      toUnit('lu-reset');
      await abortTasks((t) => t.lun === p.lun);
      return respond(TmfResponse.FUNCTION_COMPLETE);
    case TmfFunction.TARGET_WARM_RESET:
    case TmfFunction.TARGET_COLD_RESET:
      for (const u of units.values()) u.taskManagement('target-reset', c.nexus);
      await abortTasks(() => true);
      respond(TmfResponse.FUNCTION_COMPLETE);
      if (fn === TmfFunction.TARGET_COLD_RESET) c.conn.end();
      return;
    case TmfFunction.TASK_REASSIGN:
      return respond(TmfResponse.REASSIGNMENT_NOT_SUPPORTED);
    default:
      return respond(TmfResponse.NOT_SUPPORTED);
  }
}

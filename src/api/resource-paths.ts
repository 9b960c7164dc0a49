// No imports: the CLI's command definitions read these without loading zod.

/**
 * The directory on each node whose programs Resources may run (Heartbeat's
 * /etc/ha.d/resource.d). Root-owned on the node, mounted read-only into the agent; a
 * Resource names a program there, it cannot bring its own (docs/security.md).
 */
export const RESOURCE_DIR = '/etc/heartline/resource.d';

/** Where kind lsb scripts live (LSB init scripts). */
export const INIT_DIR = '/etc/init.d';

/**
 * decideMembership: generation 1 is the labelled set; later generations change one member at
 * a time; the next but one waits for the barrier (a majority of the previous generation's
 * voters at the current one, then lease + margin). And on a simulated cluster: labelling a
 * fourth Node and unlabelling a non-holder publish generations 2 and 3 and move nothing.
 */
import { decideMembership, type MembershipInput } from '../../../src/controller/decide/membership.js';
import { Rig } from './rig.js';

const base: MembershipInput = {
  published: undefined,
  candidates: ['a', 'b', 'c'],
  advertised: new Map(),
  witnessVotes: false,
  now: 10_000,
  barrierSince: undefined,
  waitMs: 1000,
  pollMs: 200,
};

describe('decideMembership', () => {
  it('publishes the labelled set as generation 1, and nothing for no Node', () => {
    expect(decideMembership(base).membership).toEqual({ generation: 1, members: ['a', 'b', 'c'] });
    expect(decideMembership({ ...base, candidates: [] }).membership).toBeUndefined();
  });

  it('changes one member per generation, additions first', () => {
    const d = decideMembership({
      ...base,
      published: { generation: 1, members: ['a', 'b', 'c'] },
      candidates: ['b', 'c', 'd', 'e'],
    });
    expect(d.membership).toEqual({ generation: 2, members: ['a', 'b', 'c', 'd'], previous: ['a', 'b', 'c'] });
    expect(d.reason).toBe('d joins');
    expect(d.retryInMs).toBe(200);
  });

  it('waits for a majority of the previous voters to run the current generation, then lease + margin', () => {
    const published = { generation: 2, members: ['a', 'b', 'c', 'd'], previous: ['a', 'b', 'c'] };
    const input = { ...base, published, candidates: ['a', 'b', 'c', 'd', 'e'] };
    const one = decideMembership({ ...input, advertised: new Map([['a', 2]]) });
    expect(one.membership).toBe(published);
    expect(one.reason).toMatch(/waiting for 2 of generation 1's 3 voters/);
    expect(one.barrierSince).toBeUndefined();
    const two = decideMembership({
      ...input,
      advertised: new Map([
        ['a', 2],
        ['c', 3],
      ]),
    });
    expect(two.membership).toBe(published);
    expect(two.barrierSince).toBe(10_000);
    expect(two.retryInMs).toBe(1000);
    const later = decideMembership({
      ...input,
      advertised: new Map([
        ['a', 2],
        ['c', 2],
      ]),
      barrierSince: 10_000,
      now: 11_000,
    });
    expect(later.membership).toEqual({
      generation: 3,
      members: ['a', 'b', 'c', 'd', 'e'],
      previous: published.members,
    });
  });

  it('counts the voting witness as moved, and never removes the last member', () => {
    const published = { generation: 2, members: ['a', 'b'], previous: ['a'] };
    const d = decideMembership({
      ...base,
      published,
      candidates: ['b'],
      witnessVotes: true,
      advertised: new Map(),
      barrierSince: 0,
    });
    // Voters of generation 1: a and the witness; the witness alone is not a majority of 2.
    expect(d.membership).toBe(published);
    const moved = decideMembership({
      ...base,
      published,
      candidates: ['b'],
      witnessVotes: true,
      advertised: new Map([['a', 2]]),
      barrierSince: 0,
    });
    expect(moved.membership).toEqual({ generation: 3, members: ['b'], previous: ['a', 'b'] });
    const last = decideMembership({ ...base, published: { generation: 3, members: ['b'] }, candidates: [] });
    expect(last.membership).toEqual({ generation: 3, members: ['b'] });
  });
});

describe('membership change on a simulated cluster', () => {
  let rig: Rig;
  afterEach(async () => {
    await rig?.close();
  });

  it('a fourth Node labelled and a non-holder unlabelled: generations 2 and 3, the VIP never moves', async () => {
    rig = new Rig({
      nodes: ['node-a', 'node-b', 'node-c', 'node-d'],
      vips: [{ name: 'vip1', address: '198.18.0.100/24', preferredNodes: ['node-a'] }],
    });
    // node-d exists but is not labelled yet.
    rig.api.apply('Node', {
      metadata: { name: 'node-d', labels: {} },
      status: { addresses: [{ type: 'InternalIP', address: '198.18.0.4' }] },
    });
    rig.addController('c1');
    const membership = async () =>
      (
        (await rig.object('HACluster', 'web'))?.status as {
          membership?: { generation: number; members: string[] };
        }
      )?.membership;
    await rig.until(async () => (await membership())?.generation === 1);
    await rig.startAgents(['node-a', 'node-b', 'node-c']);
    await rig.until(async () => (await rig.vipStatus()).holder === 'node-a');
    const epoch = (await rig.vipStatus()).epoch;

    rig.api.apply('Node', {
      metadata: { name: 'node-d', labels: { 'heartline.dev/member': 'true' } },
      status: { addresses: [{ type: 'InternalIP', address: '198.18.0.4' }] },
    });
    await rig.until(async () => (await membership())?.generation === 2);
    expect((await membership())?.members).toEqual(['node-a', 'node-b', 'node-c', 'node-d']);
    await rig.reconfigureAgents();
    rig.agents.get('node-d')!.start(await rig.config());
    await rig.advance(3000);

    rig.api.apply('Node', {
      metadata: { name: 'node-b', labels: {} },
      status: { addresses: [{ type: 'InternalIP', address: '198.18.0.2' }] },
    });
    await rig.until(async () => (await membership())?.generation === 3, 20_000);
    expect((await membership())?.members).toEqual(['node-a', 'node-c', 'node-d']);
    await rig.agents.get('node-b')!.stop(); // the removed node leaves
    await rig.reconfigureAgents();
    await rig.advance(3000);

    expect(rig.holders()).toEqual(['node-a']);
    expect(rig.agents.get('node-a')!.log.map((c) => c.type)).toEqual(['bind']);
    expect((await rig.vipStatus()).epoch).toBe(epoch);
  });
});

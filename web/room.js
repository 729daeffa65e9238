// @ts-check
// The room's state as the node sends it down the data channel (streaming/room_messages.cpp, the same bytes as
// the UDP path's kRoomState payload, behind a packet-type byte): version, node time, the page's own slot, the
// members (slot, hands, name), the shared objects and the last events. Read with bounds checks: a message
// that does not add up is ignored.

export const kRoomStatePacketType = 10;
const kNameBytes = 24;

/**
 * @typedef {{version: number, yourSlot: number, members: {slot: number, name: string, hands: number}[],
 *   objects: {id: number, holderSlot: number, position: number[]}[]}} RoomState
 */

/** @param {ArrayBuffer} data @returns {RoomState | null} */
export function parseRoomState(data) {
  const v = new DataView(data);
  if (v.byteLength < 21 || v.getUint8(0) !== kRoomStatePacketType) return null;
  const base = 1;
  const memberCount = v.getUint8(base + 17), objectCount = v.getUint8(base + 18), eventCount = v.getUint8(base + 19);
  if (memberCount > 8 || objectCount > 4 || eventCount > 8) return null;
  if (v.byteLength !== base + 20 + memberCount * 34 + objectCount * 30 + eventCount * 39) return null;
  const decoder = new TextDecoder('utf-8', { fatal: false });
  /** @type {RoomState} */
  const state = { version: Number(v.getBigUint64(base, true)), yourSlot: v.getUint8(base + 16), members: [], objects: [] };
  let p = base + 20;
  for (let i = 0; i < memberCount; ++i, p += 34) {
    const name = new Uint8Array(data, p + 2, kNameBytes);
    const end = name.indexOf(0);
    state.members.push({ slot: v.getUint8(p), hands: v.getUint8(p + 1), name: decoder.decode(name.subarray(0, end < 0 ? kNameBytes : end)) });
  }
  for (let i = 0; i < objectCount; ++i, p += 30)
    state.objects.push({ id: v.getUint8(p), holderSlot: v.getUint8(p + 1),
      position: [v.getFloat32(p + 2, true), v.getFloat32(p + 6, true), v.getFloat32(p + 10, true)] });
  return state;
}

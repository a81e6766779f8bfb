/**
 * A structure as the API shows it (the fields of `serializeStructure`, services/serialize.ts), built
 * by Postgres as JSON text: `structure_card(id[, with_warnings])` (see the structure_cards
 * migration) builds everything but the view and download counts, which change on every read and are
 * added here. Searches read the cards triggers keep in `structure_cards` (one row per hit instead of
 * three joins and a JSON build), kept as their members (the text without the opening brace);
 * GET /v1/structures/:id builds its one card with the current version's validation warnings.
 *
 * Aliases: `cs` the structure; `cc` its kept card, joined with {@link STRUCTURE_CARD_JOIN} after `structures cs`.
 */

export const STRUCTURE_CARD_JOIN = 'left join structure_cards cc on cc.structure_id = cs.id';

/** A card from its members (JSON text without the opening brace), with cs's view and download counts as its first fields. */
const withCounts = (members: string) => `('{"viewCount" : ' || cs.view_count || ', "downloadCount" : ' || cs.download_count || ', ' || ${members})`;

/**
 * The structure as search hits show it: its kept card (built on the spot should it be missing),
 * with the counts. Text.
 */
export const STRUCTURE_CARD_JSON = withCounts('coalesce(cc.members, structure_card_members(cs.id))');

/** The structure as GET /v1/structures/:id shows it: the card with the current version's validation warnings, with the counts. Text. */
export const STRUCTURE_JSON = withCounts('substr(structure_card(cs.id, true), 2)');

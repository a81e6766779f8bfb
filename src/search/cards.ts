/**
 * A structure as the API shows it (the fields of `serializeStructure`, entities/serialize.ts), built
 * by Postgres as JSON text: `structure_card(id[, with_warnings])` (see the structure_cards
 * migration) builds everything but the view and download counts, which change on every read and are
 * added here. Searches read the card triggers keep in the structure's own row
 * (`structures.card_members`, see the structure_card_column migration: no join and no JSON build
 * per hit), kept as its members (the text without the opening brace); GET /v1/structures/:id builds
 * its one card with the current version's validation warnings.
 *
 * Alias: `cs` the structure.
 */

/** A card from its members (JSON text without the opening brace), with cs's view and download counts as its first fields. */
const withCounts = (members: string) => `('{"viewCount" : ' || cs.view_count || ', "downloadCount" : ' || cs.download_count || ', ' || ${members})`;

/**
 * The structure as search hits show it: its kept card (built on the spot should it be missing),
 * with the counts. Text.
 */
export const STRUCTURE_CARD_JSON = withCounts('coalesce(cs.card_members, structure_card_members(cs.id))');

/**
 * The same card as {@link STRUCTURE_CARD_JSON}, as arguments of a `concat(...)` that may add more
 * around it: concat builds its text once, where each `||` copies the text grown so far.
 */
export const STRUCTURE_CARD_CONCAT_ARGS = `'{"viewCount" : ', cs.view_count, ', "downloadCount" : ', cs.download_count, ', ', coalesce(cs.card_members, structure_card_members(cs.id))`;

/** The structure as GET /v1/structures/:id shows it: the card with the current version's validation warnings, with the counts. Text. */
export const STRUCTURE_JSON = withCounts('substr(structure_card(cs.id, true), 2)');

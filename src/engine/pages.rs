//! Page storage in two forms, full and delta, and the freeing of pages.
//!
//! A page is addressed by the hash of its full encoding (a [`PageBody`])
//! whichever form it is stored in. A new page that differs from the parent
//! snapshot's page at the same index in at most half of its positions is
//! stored as a [`PageDelta`]: the parent's page hash plus the changed
//! positions. Block counts follow the stored form. A full page holds one
//! reference per non-zero entry, and a delta page one per non-zero change. A
//! delta page keeps its base stored through an edge key (`e` + base + delta),
//! not through the base's count.
//!
//! Invariant: every stored page is named by at least one root entry, except
//! between the GC step that drops its last root entry and the step that frees
//! it. Freeing a page first re-expresses every delta page based on it. Each
//! of them is based on the freed page's own base instead, or becomes full when
//! the freed page was full. The block counts change by the difference between
//! the old and new stored forms, so a delete pays for the changes between
//! neighbouring snapshots, not for the length of the pages they share.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::codec;
use crate::storage::hash::{BlockHash, PageHash};
use crate::storage::keys;
use crate::storage::meta::Batch;
use crate::storage::records::{PageBody, PageDelta};
use crate::Store;

use super::create::PAGE_ENTRIES;

/// Maximum number of delta records between a page and the full page its
/// entries come from. Reading a page walks this chain, so a page deeper than
/// this is stored full.
pub(crate) const MAX_DELTA_DEPTH: usize = 16;

/// Attempts to resolve a page before a missing base or a hash mismatch counts
/// as corruption. Readers do not take the writer lock, so a concurrent GC step
/// can re-express a delta page between two reads of its chain. Every commit
/// is atomic, so a second read of the chain returns a consistent state.
const RESOLVE_ATTEMPTS: usize = 4;

/// A page as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredPage {
    Full(PageBody),
    Delta(PageDelta),
}

impl StoredPage {
    /// Returns the non-zero blocks this stored form references, once per
    /// occurrence.
    pub(crate) fn block_refs(&self) -> Box<dyn Iterator<Item = &BlockHash> + '_> {
        match self {
            StoredPage::Full(body) => Box::new(body.entries.iter().filter(|hash| !hash.is_zero())),
            StoredPage::Delta(delta) => Box::new(
                delta
                    .changes
                    .iter()
                    .map(|(_, hash)| hash)
                    .filter(|hash| !hash.is_zero()),
            ),
        }
    }

    /// Returns the page a delta page is based on, or `None` for a full page.
    pub(crate) fn base(&self) -> Option<PageHash> {
        match self {
            StoredPage::Full(_) => None,
            StoredPage::Delta(delta) => Some(delta.base),
        }
    }
}

/// The entries of a stored page and the number of delta records read to get
/// them (0 for a full page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedPage {
    pub hash: PageHash,
    pub entries: Vec<BlockHash>,
    pub depth: usize,
}

/// Returns the address of a page with these entries.
pub(crate) fn page_hash(entries: &[BlockHash]) -> Result<(PageHash, Vec<u8>)> {
    let encoded = codec::encode(&PageBody {
        entries: entries.to_vec(),
    })?;
    Ok((PageHash::of(&encoded), encoded))
}

/// Chooses how to store a page with `entries`: as a delta against `base` when
/// the lengths match, the chain stays within [`MAX_DELTA_DEPTH`] and at most
/// half of the positions differ, and full otherwise.
pub(crate) fn stored_form(entries: &[BlockHash], base: Option<&ResolvedPage>) -> StoredPage {
    let full = || {
        StoredPage::Full(PageBody {
            entries: entries.to_vec(),
        })
    };
    let Some(base) = base else {
        return full();
    };
    let Ok(len) = u32::try_from(entries.len()) else {
        return full();
    };
    if base.entries.len() != entries.len() || base.depth >= MAX_DELTA_DEPTH {
        return full();
    }
    let changes: Vec<(u32, BlockHash)> = (0..len)
        .zip(entries.iter().zip(&base.entries))
        .filter(|(_, (new, old))| new != old)
        .map(|(position, (new, _))| (position, *new))
        .collect();
    if changes.len() * 2 > entries.len() {
        return full();
    }
    StoredPage::Delta(PageDelta {
        base: base.hash,
        len,
        changes,
    })
}

/// Adds the records of a new stored page to `batch`: its body or delta and,
/// for a delta, the edge from its base. The caller stages the count and the
/// block references.
pub(crate) fn stage_stored_page(
    batch: &mut Batch,
    page: &PageHash,
    stored: &StoredPage,
) -> Result<()> {
    match stored {
        StoredPage::Full(body) => batch.put(keys::page_body(page), body),
        StoredPage::Delta(delta) => {
            batch.put(keys::page_delta(page), delta)?;
            batch.put_raw(keys::page_edge(&delta.base, page), &[]);
            Ok(())
        }
    }
}

/// Adds the removal of a stored page's form to `batch`: its body or delta and,
/// for a delta, the edge from its base.
fn unstage_stored_page(batch: &mut Batch, page: &PageHash, stored: &StoredPage) {
    match stored {
        StoredPage::Full(_) => batch.remove(keys::page_body(page)),
        StoredPage::Delta(delta) => {
            batch.remove(keys::page_delta(page));
            batch.remove(keys::page_edge(&delta.base, page));
        }
    }
}

/// Applies `changes` to `base` cut or padded to `len` entries.
fn apply_changes(base: &[BlockHash], len: u32, changes: &[(u32, BlockHash)]) -> Vec<BlockHash> {
    let len = len as usize;
    let mut entries = base.get(..len.min(base.len())).unwrap_or_default().to_vec();
    entries.resize(len, BlockHash::ZERO);
    for (position, hash) in changes {
        if let Some(entry) = entries.get_mut(*position as usize) {
            *entry = *hash;
        }
    }
    entries
}

impl Store {
    /// Loads the stored form of `page`, or `None` if it is stored in neither
    /// form.
    ///
    /// The delta form is read first. A GC step can turn a delta page into a
    /// full one between the two reads, but never a full page into a delta
    /// page, so this order cannot miss a page that stays stored.
    pub(crate) fn load_stored_page(&self, page: &PageHash) -> Result<Option<StoredPage>> {
        if let Some(delta) = self
            .meta
            .get::<PageDelta>("delta page", &keys::page_delta(page))?
        {
            return Ok(Some(StoredPage::Delta(delta)));
        }
        Ok(self
            .meta
            .get::<PageBody>("page", &keys::page_body(page))?
            .map(StoredPage::Full))
    }

    /// Reads the entries of `page`, following its chain of deltas, and checks
    /// them against the page's hash. Returns `None` if the page itself is not
    /// stored; a missing base or a mismatch is a corruption error.
    pub(crate) fn resolve_page(&self, page: &PageHash) -> Result<Option<ResolvedPage>> {
        let mut last_error = None;
        for _ in 0..RESOLVE_ATTEMPTS {
            match self.try_resolve_page(page) {
                Ok(resolved) => return Ok(resolved),
                Err(error) if error.kind() == ErrorKind::Corruption => {
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            Error::service("resolving a page made no attempt. This is a bug in blocksnap")
        }))
    }

    fn try_resolve_page(&self, page: &PageHash) -> Result<Option<ResolvedPage>> {
        let mut deltas: Vec<PageDelta> = Vec::new();
        let mut current = *page;
        let full = loop {
            match self.load_stored_page(&current)? {
                Some(StoredPage::Full(body)) => break body,
                Some(StoredPage::Delta(delta)) => {
                    check_delta(&current, &delta)?;
                    if deltas.len() > MAX_DELTA_DEPTH * 4 {
                        return Err(Error::corruption(format!(
                            "page {page} is based on a chain of more than {} delta pages. Run `blocksnap verify`",
                            MAX_DELTA_DEPTH * 4
                        )));
                    }
                    current = delta.base;
                    deltas.push(delta);
                }
                None if deltas.is_empty() => return Ok(None),
                None => {
                    return Err(Error::corruption(format!(
                    "page {current}, a base of page {page}, is not stored. Run `blocksnap verify`"
                )))
                }
            }
        };
        let depth = deltas.len();
        let mut entries = full.entries;
        for delta in deltas.iter().rev() {
            entries = apply_changes(&entries, delta.len, &delta.changes);
        }
        let (hash, _) = page_hash(&entries)?;
        if hash != *page {
            return Err(Error::corruption(format!(
                "page {page} does not match its hash. Run `blocksnap verify`"
            )));
        }
        Ok(Some(ResolvedPage {
            hash,
            entries,
            depth,
        }))
    }

    /// Returns the delta pages based on `page`.
    pub(crate) fn page_dependents(&self, page: &PageHash) -> Result<Vec<PageHash>> {
        let mut dependents = Vec::new();
        for entry in self.meta.scan("page edge", &keys::page_edge_prefix(page)) {
            let (key, _) = entry?;
            let (_, delta) = keys::parse_page_edge(&key)
                .ok_or_else(|| crate::store::bad_key("page edge", &key))?;
            dependents.push(delta);
        }
        Ok(dependents)
    }

    /// Stages the removal of `page`, whose count reached zero, into `batch`:
    /// every delta page based on it is re-expressed, and `block_changes`
    /// receives the change of each block's count.
    ///
    /// `dependents` are the delta pages based on `page`, as stored before this
    /// batch; the caller makes sure no other page of the batch touched them.
    pub(crate) fn stage_free_page(
        &self,
        batch: &mut Batch,
        page: &PageHash,
        stored: &StoredPage,
        dependents: &[PageHash],
        block_changes: &mut HashMap<BlockHash, i64>,
    ) -> Result<()> {
        // Every read and check comes first, so that a damaged page fails the
        // call before anything is staged.
        let rebased = self.rebase_dependents(page, stored, dependents)?;

        for block in stored.block_refs() {
            *block_changes.entry(*block).or_insert(0) -= 1;
        }
        unstage_stored_page(batch, page, stored);
        batch.remove(keys::page_count(page));
        for (dependent, old, new) in rebased {
            for block in old.block_refs() {
                *block_changes.entry(*block).or_insert(0) -= 1;
            }
            unstage_stored_page(batch, &dependent, &old);
            for block in new.block_refs() {
                *block_changes.entry(*block).or_insert(0) += 1;
            }
            stage_stored_page(batch, &dependent, &new)?;
        }
        Ok(())
    }

    /// Computes the new stored form of each delta page based on `page`:
    /// returns (dependent, old form, new form) triples.
    fn rebase_dependents(
        &self,
        page: &PageHash,
        stored: &StoredPage,
        dependents: &[PageHash],
    ) -> Result<Vec<(PageHash, StoredPage, StoredPage)>> {
        if dependents.is_empty() {
            return Ok(Vec::new());
        }
        let freed = self.resolve_page(page)?.ok_or_else(|| missing_page(page))?;
        // The page each dependent is re-expressed against: the freed page's
        // base, or else the first dependent, which becomes full.
        let mut new_base = match stored.base() {
            Some(base) => Some(
                self.resolve_page(&base)?
                    .ok_or_else(|| missing_page(&base))?,
            ),
            None => None,
        };
        let mut rebased = Vec::with_capacity(dependents.len());
        for dependent in dependents {
            let Some(StoredPage::Delta(delta)) = self.load_stored_page(dependent)? else {
                return Err(Error::corruption(format!(
                    "page {dependent} is recorded as based on page {page} but is not a delta page. \
                     Run `blocksnap verify`"
                )));
            };
            if delta.base != *page {
                return Err(Error::corruption(format!(
                    "page {dependent} is recorded as based on page {page} but is based on {}. \
                     Run `blocksnap verify`",
                    delta.base
                )));
            }
            check_delta(dependent, &delta)?;
            let entries = apply_changes(&freed.entries, delta.len, &delta.changes);
            let (hash, _) = page_hash(&entries)?;
            if hash != *dependent {
                return Err(Error::corruption(format!(
                    "page {dependent} does not match its hash. Run `blocksnap verify`"
                )));
            }
            let new = stored_form(&entries, new_base.as_ref());
            if new_base.is_none() {
                new_base = Some(ResolvedPage {
                    hash: *dependent,
                    entries,
                    depth: 0,
                });
            }
            rebased.push((*dependent, StoredPage::Delta(delta), new));
        }
        Ok(rebased)
    }

    /// Removes the pages in `pages` that can go in one step, as one commit, and
    /// returns how many it removed (at least one unless `pages` is empty).
    ///
    /// A page whose records another page of the step already changed (as the
    /// freed page, its base or a dependent) ends the step, because the reads
    /// here do not see the uncommitted batch.
    pub(crate) fn free_pages_batch(
        &self,
        batch: &mut Batch,
        pages: &[PageHash],
        block_changes: &mut HashMap<BlockHash, i64>,
    ) -> Result<usize> {
        let mut touched: HashSet<PageHash> = HashSet::new();
        let mut done = 0;
        for page in pages {
            let count = self
                .meta
                .get::<crate::storage::records::PageCount>("page count", &keys::page_count(page))?;
            if count.is_some_and(|count| count.refcount > 0) {
                // Named by a root again: nothing to free.
                done += 1;
                continue;
            }
            let stored = match self.load_stored_page(page) {
                Ok(Some(stored)) => stored,
                // Already freed by an earlier run of this item.
                Ok(None) => {
                    done += 1;
                    continue;
                }
                Err(error) if error.kind() == ErrorKind::Corruption => {
                    tracing::warn!(%page, %error, "a page that does not decode cannot be freed; keeping it");
                    done += 1;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let dependents = self.page_dependents(page)?;
            let mut involved = dependents.clone();
            involved.push(*page);
            involved.extend(stored.base());
            if involved.iter().any(|other| touched.contains(other)) {
                break;
            }
            match self.stage_free_page(batch, page, &stored, &dependents, block_changes) {
                Ok(()) => touched.extend(involved),
                Err(error) if error.kind() == ErrorKind::Corruption => {
                    // Nothing was staged. The page stays stored without a
                    // count, so the delta pages based on it resolve as before.
                    // `verify` reports it, and `repair` names what it damages.
                    tracing::warn!(%page, %error, "a damaged page cannot be freed; keeping it");
                }
                Err(error) => return Err(error),
            }
            done += 1;
        }
        Ok(done)
    }
}

/// Rejects a delta record that no page could have produced: longer than a
/// page, or with a change past its length.
fn check_delta(page: &PageHash, delta: &PageDelta) -> Result<()> {
    let len = delta.len as usize;
    if len > PAGE_ENTRIES
        || delta
            .changes
            .iter()
            .any(|(position, _)| *position >= delta.len)
    {
        return Err(Error::corruption(format!(
            "delta page {page} claims {len} entries or a change past them; a page has at most {PAGE_ENTRIES}. \
             Run `blocksnap verify`"
        )));
    }
    Ok(())
}

fn missing_page(page: &PageHash) -> Error {
    Error::corruption(format!(
        "page {page} is being freed but is not stored. Run `blocksnap verify`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(seeds: &[u8]) -> Vec<BlockHash> {
        seeds
            .iter()
            .map(|seed| {
                if *seed == 0 {
                    BlockHash::ZERO
                } else {
                    BlockHash::of(&[*seed])
                }
            })
            .collect()
    }

    fn resolved(entries: Vec<BlockHash>, depth: usize) -> ResolvedPage {
        ResolvedPage {
            hash: page_hash(&entries).unwrap().0,
            entries,
            depth,
        }
    }

    #[test]
    fn small_change_is_stored_as_delta() {
        let base = resolved(hashes(&[1, 2, 3, 4]), 0);
        let form = stored_form(&hashes(&[1, 9, 3, 4]), Some(&base));
        let StoredPage::Delta(delta) = &form else {
            panic!("expected a delta page, got {form:?}");
        };
        assert_eq!(delta.base, base.hash);
        assert_eq!(delta.changes, vec![(1, BlockHash::of(&[9]))]);
        assert_eq!(form.block_refs().count(), 1);
    }

    #[test]
    fn large_change_is_stored_full() {
        let base = resolved(hashes(&[1, 2, 3, 4]), 0);
        let form = stored_form(&hashes(&[5, 6, 7, 4]), Some(&base));
        assert!(matches!(form, StoredPage::Full(_)));
    }

    #[test]
    fn deep_chain_is_stored_full() {
        let base = resolved(hashes(&[1, 2, 3, 4]), MAX_DELTA_DEPTH);
        let form = stored_form(&hashes(&[1, 9, 3, 4]), Some(&base));
        assert!(matches!(form, StoredPage::Full(_)));
    }

    #[test]
    fn length_change_is_stored_full() {
        let base = resolved(hashes(&[1, 2, 3, 4]), 0);
        let form = stored_form(&hashes(&[1, 2, 3]), Some(&base));
        assert!(matches!(form, StoredPage::Full(_)));
    }

    #[test]
    fn zero_change_holds_no_reference() {
        let base = resolved(hashes(&[1, 2, 3, 4]), 0);
        let form = stored_form(&hashes(&[1, 0, 3, 4]), Some(&base));
        assert!(matches!(form, StoredPage::Delta(_)));
        assert_eq!(form.block_refs().count(), 0);
    }

    #[test]
    fn changes_apply_to_cut_or_padded_base() {
        let base = hashes(&[1, 2, 3]);
        let longer = apply_changes(&base, 5, &[(4, BlockHash::of(&[7]))]);
        assert_eq!(longer, hashes(&[1, 2, 3, 0, 7]));
        let shorter = apply_changes(&base, 2, &[(0, BlockHash::of(&[8]))]);
        assert_eq!(shorter, hashes(&[8, 2]));
    }
}

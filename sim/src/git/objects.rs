//! The git objects of a fixture repository and the packfile that carries them.
//!
//! Every repository with commits holds one: a README.md naming the repository, the tree holding
//! it, and a root commit with a fixed author, committer and time, so a repository's commit id is
//! the same in every run and differs between repositories. Every advertised ref (HEAD, the
//! default branch, `develop`, the `v1.0.0` tag) points at that commit.
//!
//! The pack is version 2 (gitformat-pack.txt) with whole (undeltified) objects, each
//! zlib-deflated, and the SHA-1 of everything before it as its trailer.

use sha1::{Digest, Sha1};

/// A SHA-1 object id.
pub(crate) type Oid = [u8; 20];

/// A fixed time (2024-01-01T00:00:00Z), so commit ids do not depend on when the simulator runs.
const TIME: &str = "1704067200 +0000";
const IDENT: &str = "bbconn-sim <bbconn-sim@example.com>";

/// An object's type, numbered as packs number them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Commit = 1,
    Tree = 2,
    Blob = 3,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    kind: Kind,
    data: Vec<u8>,
    id: Oid,
}

impl Object {
    fn new(kind: Kind, data: Vec<u8>) -> Object {
        let mut h = Sha1::new();
        h.update(format!("{} {}\0", kind.name(), data.len()).as_bytes());
        h.update(&data);
        Object {
            kind,
            id: digest(h),
            data,
        }
    }
}

fn digest(h: Sha1) -> Oid {
    let mut id = [0; 20];
    // SHA-1's output is 20 bytes by its type: the lengths always match.
    id.copy_from_slice(&h.finalize());
    id
}

/// The objects of one repository with commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repo {
    commit: Object,
    tree: Object,
    blob: Object,
}

impl Repo {
    /// The repository called `name` (`owner/slug`, as the clone URL names it).
    pub(crate) fn new(name: &str) -> Repo {
        let blob = Object::new(
            Kind::Blob,
            format!("# {name}\n\nA fixture repository of the Bitbucket simulator (bbconn-sim).\n")
                .into_bytes(),
        );
        let mut tree = b"100644 README.md\0".to_vec();
        tree.extend_from_slice(&blob.id);
        let tree = Object::new(Kind::Tree, tree);
        let commit = Object::new(
            Kind::Commit,
            format!(
                "tree {}\nauthor {IDENT} {TIME}\ncommitter {IDENT} {TIME}\n\nThe fixture repository {name}\n",
                hex(&tree.id)
            )
            .into_bytes(),
        );
        Repo { commit, tree, blob }
    }

    /// The one commit every ref points at.
    pub(crate) fn commit(&self) -> Oid {
        self.commit.id
    }

    /// The objects a client that has none of them needs: everything, commit first.
    pub(crate) fn objects(&self) -> [&Object; 3] {
        [&self.commit, &self.tree, &self.blob]
    }
}

pub(crate) fn hex(id: &Oid) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// An object id from its 40 hex digits (either case).
pub(crate) fn parse_hex(s: &str) -> Option<Oid> {
    if s.len() != 40 || !s.is_ascii() {
        return None;
    }
    let mut id = [0; 20];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(id)
}

/// A version 2 pack of `objects`, whole and zlib-deflated.
pub(crate) fn pack(objects: &[&Object]) -> Vec<u8> {
    let mut out = b"PACK".to_vec();
    out.extend_from_slice(&2u32.to_be_bytes());
    // A fixture repository has three objects: the count always fits.
    out.extend_from_slice(
        &u32::try_from(objects.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for o in objects {
        // The header: type and size, the size's low four bits first, then seven at a time.
        let mut size = o.data.len();
        let mut byte = ((o.kind as u8) << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size > 0 {
            out.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        out.push(byte);
        out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(&o.data, 6));
    }
    let mut h = Sha1::new();
    h.update(&out);
    let trailer = digest(h);
    out.extend_from_slice(&trailer);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_git_s() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            hex(&Object::new(Kind::Blob, b"hello\n".to_vec()).id),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        // The empty tree's well-known id.
        assert_eq!(
            hex(&Object::new(Kind::Tree, Vec::new()).id),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn repositories_are_stable_and_distinct() {
        let a = Repo::new("acme/app");
        assert_eq!(a, Repo::new("acme/app"));
        assert_ne!(a.commit(), Repo::new("acme/other").commit());
        let text = String::from_utf8(a.commit.data.clone()).unwrap();
        assert!(
            text.starts_with(&format!("tree {}\n", hex(&a.tree.id))),
            "{text}"
        );
        assert_eq!(parse_hex(&hex(&a.commit())), Some(a.commit()));
        assert_eq!(
            parse_hex(&hex(&a.commit()).to_uppercase()),
            Some(a.commit())
        );
        assert_eq!(parse_hex("00"), None);
        assert_eq!(parse_hex(&"g".repeat(40)), None);
    }

    #[test]
    fn pack_layout() {
        let r = Repo::new("acme/app");
        let p = pack(&r.objects());
        assert_eq!(&p[..12], b"PACK\0\0\0\x02\0\0\0\x03");
        let (body, trailer) = p.split_at(p.len() - 20);
        let mut h = Sha1::new();
        h.update(body);
        assert_eq!(trailer, &digest(h)[..]);
        // The first object: a commit (type 1) whose size needs a second header byte.
        assert_eq!(p[12] >> 4, 0x8 | 1);
        let size = usize::from(p[12] & 0x0f) | usize::from(p[13] & 0x7f) << 4;
        assert_eq!(size, r.commit.data.len());
        let inflated = miniz_oxide::inflate::decompress_to_vec_zlib(&p[14..]).unwrap();
        assert_eq!(inflated, r.commit.data);
        assert_eq!(pack(&[]).len(), 12 + 20);
    }
}

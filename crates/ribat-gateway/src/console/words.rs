//! The console's words in French and English, chosen by the browser's `Accept-Language`.

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    /// English (the default).
    En,
    /// French.
    Fr,
}

impl Lang {
    /// The first language of `accept` (an `Accept-Language` value) the console speaks, by
    /// the browser's order of preference; English when none.
    pub(crate) fn from_accept(accept: Option<&str>) -> Self {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (order, item) in accept.unwrap_or_default().split(',').enumerate() {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("fr") => Lang::Fr,
                Some("en") => Lang::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _, _)| q > bq) {
                best = Some((q, order, lang));
            }
        }
        best.map_or(Lang::En, |(_, _, l)| l)
    }

    /// The `lang` attribute of the page.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// The words of the console in this language.
    pub(crate) fn words(self) -> &'static Words {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }
}

/// Every word the console's pages show.
#[derive(Debug)]
pub(crate) struct Words {
    pub(crate) title: &'static str,
    pub(crate) now: &'static str,
    pub(crate) decisions: &'static str,
    pub(crate) in_force: &'static str,
    pub(crate) none_in_force: &'static str,
    pub(crate) last_day: &'static str,
    pub(crate) none_last_day: &'static str,
    pub(crate) live: &'static str,
    pub(crate) id: &'static str,
    pub(crate) rule: &'static str,
    pub(crate) target: &'static str,
    pub(crate) action: &'static str,
    pub(crate) until: &'static str,
    pub(crate) decided: &'static str,
    pub(crate) state: &'static str,
    pub(crate) node: &'static str,
    pub(crate) evidence: &'static str,
    pub(crate) signature: &'static str,
    pub(crate) signature_valid: &'static str,
    pub(crate) signature_invalid: &'static str,
    pub(crate) approvals: &'static str,
    pub(crate) no_approval_yet: &'static str,
    pub(crate) release: &'static str,
    pub(crate) release_help: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) approve_release: &'static str,
    pub(crate) read_only: &'static str,
    pub(crate) own_target: &'static str,
    pub(crate) not_in_force: &'static str,
    pub(crate) in_mesh: &'static str,
    pub(crate) signed_in_as: &'static str,
    pub(crate) state_in_force: &'static str,
    pub(crate) state_released: &'static str,
    pub(crate) state_ended: &'static str,
    pub(crate) state_alert: &'static str,
    pub(crate) pending: &'static str,
    pub(crate) released: &'static str,
    pub(crate) refused: &'static str,
    pub(crate) back: &'static str,
    pub(crate) reason_missing: &'static str,
    pub(crate) audit: &'static str,
    pub(crate) cnss_number: &'static str,
    pub(crate) who_accessed: &'static str,
    pub(crate) accesses_found: &'static str,
    pub(crate) no_access: &'static str,
    pub(crate) proof_verified: &'static str,
    pub(crate) after_checkpoint: &'static str,
    pub(crate) download_proof: &'static str,
    pub(crate) checkpoint: &'static str,
    pub(crate) no_checkpoint: &'static str,
    pub(crate) checkpoint_is: &'static str,
    pub(crate) when: &'static str,
    pub(crate) purpose: &'static str,
    pub(crate) role: &'static str,
    pub(crate) institution: &'static str,
    pub(crate) identity: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) fields: &'static str,
    pub(crate) proof: &'static str,
    pub(crate) cnss_invalid: &'static str,
    pub(crate) no_person: &'static str,
    pub(crate) audit_help: &'static str,
    pub(crate) last_hour: &'static str,
    pub(crate) identities: &'static str,
    pub(crate) exports: &'static str,
    pub(crate) exports_help: &'static str,
    pub(crate) no_exports: &'static str,
    pub(crate) export: &'static str,
    pub(crate) recipient: &'static str,
    pub(crate) persons: &'static str,
    pub(crate) requested_by: &'static str,
    pub(crate) fetched_by: &'static str,
    pub(crate) approve: &'static str,
    pub(crate) run: &'static str,
    pub(crate) waiting: &'static str,
    pub(crate) approved_ready: &'static str,
    pub(crate) ran: &'static str,
    pub(crate) export_approved: &'static str,
    pub(crate) export_ran: &'static str,
    pub(crate) identities_help: &'static str,
    pub(crate) serial: &'static str,
    pub(crate) expires: &'static str,
    pub(crate) review_by: &'static str,
    pub(crate) active: &'static str,
    pub(crate) revoked: &'static str,
    pub(crate) expired: &'static str,
    pub(crate) lapsed: &'static str,
    pub(crate) chart_title: &'static str,
    pub(crate) reads: &'static str,
    pub(crate) refusals: &'static str,
    pub(crate) hour_ago: &'static str,
    pub(crate) now_word: &'static str,
    pub(crate) per_minute_top: &'static str,
}

static EN: Words = Words {
    title: "Ribat — security console",
    now: "Now",
    decisions: "Decisions",
    in_force: "Decisions in force",
    none_in_force: "No decision is in force.",
    last_day: "Decisions and alerts of the last 24 hours",
    none_last_day: "Nothing in the last 24 hours.",
    live: "This list updates itself as decisions land.",
    id: "Decision",
    rule: "Rule",
    target: "Target",
    action: "Response",
    until: "Until (UTC)",
    decided: "Decided (UTC)",
    state: "State",
    node: "Decided by",
    evidence: "Evidence",
    signature: "Signature",
    signature_valid: "verifies under this gateway's decision key",
    signature_invalid: "DOES NOT VERIFY under this gateway's decision key",
    approvals: "Approvals to release",
    no_approval_yet: "No administrator has approved a release yet.",
    release: "Release",
    release_help: "Two different administrators must approve; the target of the decision cannot.",
    reason: "Why it is lifted",
    approve_release: "Approve the release",
    read_only: "Your role reads the console; releasing is for the security team.",
    own_target: "This decision is about you: another administrator must release it.",
    not_in_force: "This decision is not in force: there is nothing to release.",
    in_mesh: "In this mesh a release is two administrators' signatures through the log, made offline with their keys:",
    signed_in_as: "Certificate",
    state_in_force: "in force",
    state_released: "released",
    state_ended: "ended",
    state_alert: "alert",
    pending: "Your approval is recorded; a second administrator must approve.",
    released: "Released: the decision is lifted.",
    refused: "Refused",
    back: "Back to the decisions",
    reason_missing: "Say why the decision is lifted (1 to 500 characters).",
    audit: "Audit",
    cnss_number: "CNSS number",
    who_accessed: "Who accessed this person",
    accesses_found: "Accesses to this person's record",
    no_access: "Nobody has accessed this person's record.",
    proof_verified: "inclusion proof verified",
    after_checkpoint: "after the latest cosigned checkpoint (proved at the next)",
    download_proof: "proof file",
    checkpoint: "Latest cosigned checkpoint",
    no_checkpoint: "No checkpoint has been cosigned yet.",
    checkpoint_is: "entries, signed by",
    when: "When (UTC)",
    purpose: "Purpose",
    role: "Role",
    institution: "Institution",
    identity: "Identity",
    outcome: "Outcome",
    fields: "Fields",
    proof: "Proof",
    cnss_invalid: "A CNSS number is 9 digits.",
    no_person: "No person has this CNSS number.",
    last_hour: "The last hour",
    identities: "Identities",
    exports: "Exports",
    exports_help: "Bulk exports to partners: filed through the API (`POST /v1/exports`), each needs two security officers' approval before it runs; the file is fetched by its recipient only, and every fetch is listed.",
    no_exports: "No export has been filed on this node.",
    export: "Export",
    recipient: "Recipient",
    persons: "Persons",
    requested_by: "Filed by",
    fetched_by: "Fetched by",
    approve: "Approve",
    run: "Run",
    waiting: "waiting for approval",
    approved_ready: "approved, ready to run",
    ran: "ran",
    export_approved: "Your approval is recorded.",
    export_ran: "The export ran; its recipient can fetch the file.",
    identities_help: "Every certificate this node's register holds: who holds which role for which institution, until when. Issue and revoke with `ribat identity` (in a mesh, `ribat mesh grant` and `mesh revoke` through the log).",
    serial: "Serial",
    expires: "Expires (UTC)",
    review_by: "Review by (UTC)",
    active: "active",
    revoked: "revoked",
    expired: "expired",
    lapsed: "lapsed (review date passed)",
    chart_title: "Records read (green) and requests refused (red) per minute over the last hour; a vertical line marks a minute with a decision",
    reads: "Records read",
    refusals: "Requests refused",
    hour_ago: "an hour ago",
    now_word: "now",
    per_minute_top: "top of the scale, per minute",
    audit_help: "The number is sent in the form's body, never in an address; every access is listed with its proof against the log's latest cosigned checkpoint.",
};

static FR: Words = Words {
    title: "Ribat — console de sécurité",
    now: "Maintenant",
    decisions: "Décisions",
    in_force: "Décisions en vigueur",
    none_in_force: "Aucune décision n'est en vigueur.",
    last_day: "Décisions et alertes des dernières 24 heures",
    none_last_day: "Rien dans les dernières 24 heures.",
    live: "Cette liste se met à jour d'elle-même quand une décision arrive.",
    id: "Décision",
    rule: "Règle",
    target: "Cible",
    action: "Réponse",
    until: "Jusqu'à (UTC)",
    decided: "Décidée (UTC)",
    state: "État",
    node: "Décidée par",
    evidence: "Éléments",
    signature: "Signature",
    signature_valid: "vérifiée avec la clé de décision de cette passerelle",
    signature_invalid: "NE SE VÉRIFIE PAS avec la clé de décision de cette passerelle",
    approvals: "Approbations de levée",
    no_approval_yet: "Aucun administrateur n'a encore approuvé de levée.",
    release: "Lever",
    release_help: "Deux administrateurs différents doivent approuver ; la cible de la décision ne le peut pas.",
    reason: "Pourquoi la lever",
    approve_release: "Approuver la levée",
    read_only: "Votre rôle consulte la console ; la levée revient à l'équipe de sécurité.",
    own_target: "Cette décision vous vise : un autre administrateur doit la lever.",
    not_in_force: "Cette décision n'est pas en vigueur : il n'y a rien à lever.",
    in_mesh: "Dans ce maillage, une levée est la signature de deux administrateurs à travers le journal, faite hors ligne avec leurs clés :",
    signed_in_as: "Certificat",
    state_in_force: "en vigueur",
    state_released: "levée",
    state_ended: "terminée",
    state_alert: "alerte",
    pending: "Votre approbation est enregistrée ; un second administrateur doit approuver.",
    released: "Levée : la décision ne s'applique plus.",
    refused: "Refusé",
    back: "Retour aux décisions",
    reason_missing: "Dites pourquoi la décision est levée (1 à 500 caractères).",
    audit: "Audit",
    cnss_number: "Numéro CNSS",
    who_accessed: "Qui a consulté cette personne",
    accesses_found: "Accès au dossier de cette personne",
    no_access: "Personne n'a consulté le dossier de cette personne.",
    proof_verified: "preuve d'inclusion vérifiée",
    after_checkpoint: "après le dernier point de contrôle cosigné (prouvé au prochain)",
    download_proof: "fichier de preuve",
    checkpoint: "Dernier point de contrôle cosigné",
    no_checkpoint: "Aucun point de contrôle n'est encore cosigné.",
    checkpoint_is: "entrées, signé par",
    when: "Quand (UTC)",
    purpose: "Finalité",
    role: "Rôle",
    institution: "Institution",
    identity: "Identité",
    outcome: "Résultat",
    fields: "Champs",
    proof: "Preuve",
    cnss_invalid: "Un numéro CNSS a 9 chiffres.",
    no_person: "Aucune personne n'a ce numéro CNSS.",
    last_hour: "La dernière heure",
    identities: "Identités",
    exports: "Exports",
    exports_help: "Exports en masse vers les partenaires : déposés par l'API (`POST /v1/exports`), chacun doit être approuvé par deux agents de sécurité avant de s'exécuter ; seul son destinataire récupère le fichier, et chaque récupération est listée.",
    no_exports: "Aucun export n'a été déposé sur ce nœud.",
    export: "Export",
    recipient: "Destinataire",
    persons: "Personnes",
    requested_by: "Déposé par",
    fetched_by: "Récupéré par",
    approve: "Approuver",
    run: "Exécuter",
    waiting: "en attente d'approbation",
    approved_ready: "approuvé, prêt à s'exécuter",
    ran: "exécuté",
    export_approved: "Votre approbation est enregistrée.",
    export_ran: "L'export s'est exécuté ; son destinataire peut récupérer le fichier.",
    identities_help: "Chaque certificat que tient le registre de ce nœud : qui tient quel rôle pour quelle institution, jusqu'à quand. Émettre et révoquer avec `ribat identity` (dans un maillage, `ribat mesh grant` et `mesh revoke` à travers le journal).",
    serial: "Numéro de série",
    expires: "Expire (UTC)",
    review_by: "À revoir avant (UTC)",
    active: "actif",
    revoked: "révoqué",
    expired: "expiré",
    lapsed: "caduc (date de revue passée)",
    chart_title: "Dossiers lus (vert) et requêtes refusées (rouge) par minute sur la dernière heure ; une ligne verticale marque une minute avec une décision",
    reads: "Dossiers lus",
    refusals: "Requêtes refusées",
    hour_ago: "il y a une heure",
    now_word: "maintenant",
    per_minute_top: "haut de l'échelle, par minute",
    audit_help: "Le numéro part dans le corps du formulaire, jamais dans une adresse ; chaque accès est listé avec sa preuve contre le dernier point de contrôle cosigné du journal.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browsers_first_language_the_console_speaks_wins() {
        assert_eq!(Lang::from_accept(None), Lang::En);
        assert_eq!(Lang::from_accept(Some("fr-FR,fr;q=0.9,en;q=0.8")), Lang::Fr);
        assert_eq!(Lang::from_accept(Some("ar-MA,fr;q=0.7,en;q=0.9")), Lang::En);
        assert_eq!(Lang::from_accept(Some("ar-MA,fr;q=0.7")), Lang::Fr);
        assert_eq!(Lang::from_accept(Some("fr;q=0,en;q=0.1")), Lang::En);
        assert_eq!(Lang::from_accept(Some("de")), Lang::En);
        assert_eq!(Lang::from_accept(Some("EN-gb, fr")), Lang::En);
        assert_eq!(Lang::Fr.code(), "fr");
        assert_eq!(Lang::Fr.words().now, "Maintenant");
    }
}

//! The fund's records as the import reads them, before sealing.

/// A row of `persons.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    /// 9-digit CNSS number.
    pub cnss: String,
    /// CIN.
    pub cin: String,
    /// Given name.
    pub given: String,
    /// Surname.
    pub surname: String,
    /// Full name in Arabic script.
    pub name_ar: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// City.
    pub city: String,
    /// 24-digit RIB.
    pub rib: String,
    /// Affiliation number of the current employer.
    pub employer: String,
}

/// A row of `employers.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmployerRow {
    /// 7-digit affiliation number.
    pub affiliation: String,
    /// 15-digit ICE.
    pub ice: String,
    /// Company name.
    pub name: String,
    /// Activity.
    pub activity: String,
    /// Address.
    pub address: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// CNSS agency code.
    pub agency: String,
}

/// One employee line of an e-BDS file (B02 existing employee or B04 new entrant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclarationRow {
    /// Employer affiliation.
    pub affiliation: String,
    /// `AAAAMM`.
    pub period: String,
    /// CNSS number.
    pub cnss: String,
    /// `NOM PRENOM`.
    pub nom_prenom: String,
    /// CIN (B04 only).
    pub cin: Option<String>,
    /// Children.
    pub children: u8,
    /// Family allowance to pay, centimes.
    pub allowance: u64,
    /// Days declared.
    pub days: u8,
    /// Real salary, centimes.
    pub salary_real: u64,
    /// Capped salary, centimes.
    pub salary_capped: u64,
    /// Situation code, empty when ordinary.
    pub situation: String,
    /// Whether it came from a B04 line.
    pub entrant: bool,
}

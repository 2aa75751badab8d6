"""One registry of the names that cross stage boundaries.

HDF5 dataset names, attribute names, Parquet column names and metric names are
spelled here once, so that every writer and reader agrees.
"""

# --- HDF5 trajectory datasets (mdtraj's layout plus ours) -------------------------------
COORDINATES = "coordinates"  # [n_frames, n_atoms, 3], nm (mdtraj layout)
TIME = "time"  # [n_frames], ps (mdtraj layout)
TOPOLOGY = "topology"  # JSON string (mdtraj layout)
FORCES = "forces"  # [n_frames, n_atoms, 3], kJ/mol/nm
TRAJECTORY_INDEX = "trajectory_index"  # [n_frames] int: source trajectory or replica of a frame

# --- attributes -------------------------------------------------------------------------
UNITS = "units"
PROVENANCE = "provenance"  # JSON text, on the HDF5 root and in Parquet schema metadata
PARQUET_PROVENANCE_KEY = b"cgpipe.provenance"

UNIT_LENGTH = "nanometers"
UNIT_TIME = "picoseconds"
UNIT_FORCE = "kilojoules/mole/nanometer"

# --- mapping table columns --------------------------------------------------------------
BEAD = "bead"
ATOM = "atom"
WEIGHT = "weight"  # coordinate weight: row of Xi
FORCE_WEIGHT = "force_weight"  # force-map weight: row of Xi_f
BEAD_NAME = "bead_name"
BEAD_TYPE = "bead_type"
BEAD_MASS = "mass"  # amu
RESIDUE_INDEX = "residue_index"
RESIDUE_NAME = "residue_name"
RESIDUE_SEQ = "residue_seq"

# --- metrics table ------------------------------------------------------------------------
SYSTEM = "system"
MAPPING = "mapping"
MODEL = "model"
FOLD = "fold"
METRIC = "metric"
VALUE = "value"
METRIC_COLUMNS = (SYSTEM, MAPPING, MODEL, FOLD, METRIC, VALUE)
ALL_FOLDS = "all"  # fold value of rows that do not depend on a fold
# Schema metadata of the metrics table: JSON metric name -> caption (one sentence, units).
PARQUET_CAPTIONS_KEY = b"cgpipe.captions"

JS_PHI_PSI = "js_phi_psi"
KL_PHI_PSI = "kl_phi_psi"
JS_PHI_PSI_REFERENCE_HALVES = "js_phi_psi_reference_halves"
KL_PHI_PSI_REFERENCE_HALVES = "kl_phi_psi_reference_halves"
# Maps without the backbone dihedrals (C-alpha) are compared on radius of gyration and
# end-to-end distance of the beads instead.
JS_RG_END_TO_END = "js_rg_end_to_end"
KL_RG_END_TO_END = "kl_rg_end_to_end"
JS_RG_END_TO_END_REFERENCE_HALVES = "js_rg_end_to_end_reference_halves"
KL_RG_END_TO_END_REFERENCE_HALVES = "kl_rg_end_to_end_reference_halves"
FORCE_RMSE_HELDOUT = "force_rmse_heldout"
FORCE_RMSE_HELDOUT_PRIOR = "force_rmse_heldout_prior"
STABLE_FRACTION = "stable_fraction"
BACKMAP_CG_RMSD = "backmap_cg_rmsd"

# --- simulation health table ----------------------------------------------------------------
REPLICA = "replica"
STABLE = "stable"
FAILURE_REASON = "failure_reason"
TIME_TO_FAILURE = "time_to_failure"  # ps; NaN for a replica that stayed stable
START_FRAME = "start_frame"  # frame of the CG reference a replica started from
N_FRAMES = "n_frames"

# --- backmapping table ----------------------------------------------------------------------
TEMPLATE = "template"  # reference frame used for a backmapped frame
CG_RMSD = "cg_rmsd"  # nm, between the CG frame and the superimposed template's CG image

# --- training losses table ------------------------------------------------------------------
EPOCH = "epoch"
SPLIT = "split"
LOSS = "loss"  # (kJ/mol/nm)^2
RMSE = "rmse"  # kJ/mol/nm

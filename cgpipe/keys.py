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
TEMPERATURE = "temperature"  # model checkpoint: the temperature it was trained at, K
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
LOW = "low"  # lower end of the value's 95 % interval; NaN where it has none
HIGH = "high"  # upper end
METRIC_COLUMNS = (SYSTEM, MAPPING, MODEL, FOLD, METRIC, VALUE, LOW, HIGH)
# Schema metadata of the metrics table: JSON metric name -> caption (one sentence, units).
PARQUET_CAPTIONS_KEY = b"cgpipe.captions"
ALL_FOLDS = "all"  # fold value of rows that do not depend on a fold

# Divergences on the 2-D projection (phi/psi; maps without phi/psi atoms, such as C-alpha:
# radius of gyration and end-to-end distance), and their noise floors: the same score of
# the reference against itself at the fold's frame count, with its 95 % interval.
JS_PHI_PSI = "js_phi_psi"
KL_PHI_PSI = "kl_phi_psi"  # D(reference || CG)
KL_REVERSE_PHI_PSI = "kl_reverse_phi_psi"  # D(CG || reference)
JS_RG_END_TO_END = "js_rg_end_to_end"
KL_RG_END_TO_END = "kl_rg_end_to_end"
KL_REVERSE_RG_END_TO_END = "kl_reverse_rg_end_to_end"
JS_TICA = "js_tica"  # on the first two TICA components, fitted on the training trajectories
KL_TICA = "kl_tica"
KL_REVERSE_TICA = "kl_reverse_tica"
FE_RMSE_PHI_PSI = "fe_rmse_phi_psi"  # kT, free-energy RMSE over bins populated in both
FE_RMSE_TICA = "fe_rmse_tica"
FE_RMSE_RG_END_TO_END = "fe_rmse_rg_end_to_end"
# 1-D distributions of bead observables (JS in nats, the mean over a family's members).
JS_RG = "js_rg"
JS_BONDS = "js_bonds"
JS_ANGLES = "js_angles"
JS_DIHEDRALS = "js_dihedrals"
FLOOR_SUFFIX = "_floor"  # the reference against itself at the sample's frame count
ECHO_SUFFIX = "_echo"  # the echo baseline: the start frames, never moving, scored the same way
REPLAY_SUFFIX = "_replay"  # the replay baseline: the fold's training frames at the CG frame count
INSAMPLE_SUFFIX = "_insample"  # secondary: against every reference trajectory (no verdict)
FLOOR_RESOLUTION_SUFFIX = "_floor_resolution"  # 2 sqrt(tau_int / n) of the held-out reference
FORCE_DELTA_MSE = "force_delta_mse"  # (kJ/mol/nm)^2: MSE(prior alone) - MSE(model), held out
# Basin populations (0-1): POPULATION_PREFIX + state name; of the CG simulation per fold,
# of the reference pooled (+ REFERENCE_SUFFIX) and per trajectory (+ REFERENCE_SUFFIX + "_traj<i>").
POPULATION_PREFIX = "population_"
REFERENCE_SUFFIX = "_reference"
# Convergence of the CG simulation (after burn-in).
RELAXATION_TIME = "relaxation_time"  # ps: integrated autocorrelation time of the slowest observable
RUN_OVER_RELAXATION = "run_over_relaxation"  # production length per replica / relaxation time
START_SET_DIFFERENCE = "start_set_difference"  # largest population difference, start groups
CONVERGED = "converged"  # 1: run >= 10 relaxation times and the start groups agree; 0: not
FORCE_RMSE_HELDOUT = "force_rmse_heldout"
FORCE_RMSE_HELDOUT_PRIOR = "force_rmse_heldout_prior"
STABLE_FRACTION = "stable_fraction"
SURVIVAL_PREFIX = "survival_"  # + "{percent}pct": replicas still running then
EXCHANGE_PREFIX = "exchange_acceptance_"  # + "{low}K_{high}K": parallel tempering
BACKMAP_CG_RMSD = "backmap_cg_rmsd"
# A model that samples i.i.d. too (the diffusion model): its draws' rows of the metrics of
# the sampled ensemble, prefixed; and the simulation's JS over the draws' JS per projection.
IID_PREFIX = "iid_"
SAMPLING_GAP_PREFIX = "sampling_gap_"  # + projection name (phi_psi, rg_end_to_end, tica)

# --- simulation health table ----------------------------------------------------------------
REPLICA = "replica"
STABLE = "stable"
FAILURE_REASON = "failure_reason"
TIME_TO_FAILURE = "time_to_failure"  # ps; NaN for a replica that stayed stable
START_FRAME = "start_frame"  # frame of the CG reference a replica started from
START_STATE = "start_state"  # the state (basin) of that frame, by name
N_FRAMES = "n_frames"

# --- backmapping table ----------------------------------------------------------------------
SAMPLE = "sample"  # which of a CG frame's backmapped structures (0 … samples - 1)
TEMPLATE = "template"  # reference frame used for a backmapped frame
CG_RMSD = "cg_rmsd"  # nm, between the CG frame and the backmapped structure's CG image
PHI_CG, PSI_CG = "phi_cg", "psi_cg"  # rad, of the CG frame a structure was built from
PHI_ATOMS, PSI_ATOMS = "phi_atoms", "psi_atoms"  # rad, of the backmapped atoms

# --- training losses table ------------------------------------------------------------------
EPOCH = "epoch"
SPLIT = "split"
REPLICATE = "replicate"  # training replicate (seed) of one model and fold: 0 .. train.seeds - 1
SPLIT_TRAIN = "train"  # the frames the model is fitted on, per epoch
SPLIT_VALIDATION = "validation"  # the inner validation frames, per epoch
SPLIT_HELDOUT = "heldout"  # the fold's held-out trajectories, once, for the selected epoch
LOSS = "loss"  # (kJ/mol/nm)^2
RMSE = "rmse"  # kJ/mol/nm

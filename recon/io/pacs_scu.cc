/* C-STORE SCU behind pacs.h's C interface: dcmtk's DcmSCU (dcmnet) opens one association
 * proposing one presentation context per SOP class found in the files (explicit and implicit
 * VR little endian), sends each file and reads the response status (PS3.4 B.2.3: 0000 success,
 * Bxxx warnings count as stored). C++ only because dcmtk is; no exception crosses into C.
 * Built without dcmtk (R5_HAVE_DCMTK undefined) it reports R5_ENOTSUP. */
extern "C" {
#include "pacs.h"
}

#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#ifdef R5_HAVE_DCMTK
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmnet/scu.h"
#include "dcmtk/oflog/oflog.h"
#endif

namespace {

#ifdef R5_HAVE_DCMTK
/* SOP class and transfer syntax from a file's meta header. */
bool file_syntaxes(const char *path, std::string &sop_class, std::string &transfer_syntax)
{
	DcmFileFormat file;
	if (file.loadFile(path, EXS_Unknown, EGL_noChange, 1024, ERM_metaOnly).bad())
		return false;
	OFString sop, ts;
	DcmMetaInfo *meta = file.getMetaInfo();
	if (!meta || meta->findAndGetOFString(DCM_MediaStorageSOPClassUID, sop).bad() ||
	    meta->findAndGetOFString(DCM_TransferSyntaxUID, ts).bad())
		return false;
	sop_class = sop.c_str();
	transfer_syntax = ts.c_str();
	return true;
}

void quiet_dcmtk_logs()
{
	static std::once_flag once;
	std::call_once(once, [] { OFLog::configure(OFLogger::ERROR_LOG_LEVEL); });
}

r5_status store(const r5_pacs_dest *dest, const char *const *paths, long n, unsigned char *stored)
{
	quiet_dcmtk_logs();
	/* a file that is not readable DICOM is reported, not sent; it must not keep the others
	 * (a whole spool batch) from the PACS */
	std::set<std::string> classes;
	std::vector<std::string> sops((size_t)n), syntaxes_of((size_t)n);
	std::vector<bool> readable((size_t)n);
	long n_readable = 0;
	std::string first_failure;
	for (long i = 0; i < n; i++) {
		readable[(size_t)i] = file_syntaxes(paths[i], sops[(size_t)i], syntaxes_of[(size_t)i]);
		if (readable[(size_t)i]) {
			classes.insert(sops[(size_t)i]);
			n_readable++;
		} else if (first_failure.empty()) {
			first_failure = std::string("'") + paths[i] + "' is not a readable DICOM file";
		}
	}
	if (n_readable == 0)
		return r5_set_error(R5_EINVAL, "PACS store: %s", first_failure.c_str());
	int timeout = dest->timeout_s > 0 ? dest->timeout_s : 10;
	DcmSCU scu;
	scu.setAETitle(dest->calling_ae[0] ? dest->calling_ae : "RECON5T");
	scu.setPeerAETitle(dest->called_ae);
	scu.setPeerHostName(dest->host);
	scu.setPeerPort((Uint16)dest->port);
	scu.setConnectionTimeout(timeout);
	scu.setACSETimeout((Uint32)timeout);
	scu.setDIMSETimeout((Uint32)timeout);
	scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
	OFList<OFString> syntaxes;
	syntaxes.push_back(UID_LittleEndianExplicitTransferSyntax);
	syntaxes.push_back(UID_LittleEndianImplicitTransferSyntax);
	for (const std::string &c : classes)
		scu.addPresentationContext(c.c_str(), syntaxes);
	OFCondition cond = scu.initNetwork();
	if (cond.good())
		cond = scu.negotiateAssociation();
	if (cond.bad())
		return r5_set_error(R5_EIO, "PACS %s@%s:%d: association failed: %s", dest->called_ae, dest->host, dest->port,
				    cond.text());
	long n_stored = 0;
	for (long i = 0; i < n; i++) {
		if (!readable[(size_t)i])
			continue;
		T_ASC_PresentationContextID id =
			scu.findAnyPresentationContextID(sops[(size_t)i].c_str(), syntaxes_of[(size_t)i].c_str());
		Uint16 status = 0xFFFF;
		cond = id ? scu.sendSTORERequest(id, paths[i], NULL, status) : OFCondition(EC_IllegalCall);
		bool ok = cond.good() && (status == 0x0000 || (status & 0xF000) == 0xB000);
		if (stored)
			stored[i] = ok;
		n_stored += ok;
		if (!ok && first_failure.empty()) {
			char text[160];
			std::snprintf(text, sizeof text, "%s (status 0x%04X)", id ? cond.text() : "SOP class not accepted",
				      status);
			first_failure = text;
		}
		if (cond.bad() && !scu.isConnected())
			break; /* connection lost: the rest stay unsent */
	}
	if (scu.isConnected())
		scu.releaseAssociation();
	if (n_stored < n)
		return r5_set_error(R5_EIO, "PACS %s@%s:%d: stored %ld of %ld files; first failure: %s", dest->called_ae,
				    dest->host, dest->port, n_stored, n, first_failure.c_str());
	return R5_OK;
}
#endif

} // namespace

extern "C" r5_status r5_pacs_store_files(const r5_pacs_dest *dest, const char *const *paths, long n,
					   unsigned char *stored)
{
	if (stored)
		std::memset(stored, 0, (size_t)(n > 0 ? n : 0));
	if (!dest || !dest->host[0] || dest->port <= 0 || dest->port > 65535 || !dest->called_ae[0])
		return r5_set_error(R5_EINVAL, "PACS store: destination needs host, port and called AE title");
	if (n <= 0)
		return R5_OK;
#ifdef R5_HAVE_DCMTK
	try {
		return store(dest, paths, n, stored);
	} catch (...) {
		return r5_set_error(R5_EINTERNAL, "PACS %s@%s:%d: unexpected exception in the DICOM network library",
				    dest->called_ae, dest->host, dest->port);
	}
#else
	(void)paths;
	return r5_set_error(R5_ENOTSUP, "PACS store: recon5t was built without dcmtk");
#endif
}
